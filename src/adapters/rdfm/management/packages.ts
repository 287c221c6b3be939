import { join } from 'node:path';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { baseUrlOf } from '../../../http/base-url.ts';
import { receivePackageForm } from '../../../http/package-form.ts';
import type { RdfmRouteOptions } from '../plugin.ts';
import { allPages } from './all-pages.ts';
import { fleetdIdOf, managementOf } from './context.ts';
import { driverOf, rdfmPackage } from './package-json.ts';
import { rdfmPackageInput } from './package-metadata.ts';

type PackageRequest = FastifyRequest<{ Params: { id: string } }>;

/**
 * RDFM's packages (`/api/v1/packages`) as fleetd's: integer ids, storage metadata named as RDFM's
 * drivers name it. Uploading takes package.manage (admins), which stands for every one of RDFM's
 * upload scopes: RDFM's check of the artifact's payload types against finer scopes has nothing to
 * refine here, so the file is not opened as a tar.
 */
export async function packageRoutes(app: FastifyInstance, options: RdfmRouteOptions): Promise<void> {
  const { services, config, ids } = options;
  const driver = driverOf(config);
  // Multipart only in here, as on fleetd's own package routes: the other management routes keep refusing forms.
  await app.register(multipart);

  /** The caller, its organization and the package the path names (404 when it is not one of the organization's). */
  const packageOf = async (request: PackageRequest) => {
    const { actor, org } = await managementOf(request, options);
    const id = await fleetdIdOf(options, 'package', request.params.id, 'specified package');
    return { actor, org, pkg: await services.packages.get(actor.principal, org.id, id) };
  };

  app.get('/api/v1/packages', { config: { access: { actions: ['package.read'] } } }, async (request) => {
    const { actor, org } = await managementOf(request, options);
    const packages = await allPages((page) => services.packages.list(actor.principal, org.id, {}, page));
    const numbers = await ids.numbers('package', packages.map((pkg) => pkg.id));
    return packages.map((pkg) => rdfmPackage(pkg, numbers.get(pkg.id)!, driver)).sort((a, b) => a.id - b.id);
  });

  // RDFM's client sends the file first and the metadata after it: the file waits on disk for them.
  app.post('/api/v1/packages', { config: { access: { actions: ['package.manage'] } } }, async (request) => {
    const { actor, org } = await managementOf(request, options);
    await services.packages.authorizeUpload(actor, org.id);
    const pkg = await receivePackageForm(request, config.maxPackageSize, (input, content) => services.packages.upload(actor, org.id, input, content), {
      inputOf: rdfmPackageInput,
      spoolDir: join(config.data, 'uploads'),
    });
    return rdfmPackage(pkg, await ids.number('package', pkg.id), driver);
  });

  app.get('/api/v1/packages/:id', { config: { access: { actions: ['package.read'] } } }, async (request: PackageRequest) => {
    const { pkg } = await packageOf(request);
    return rdfmPackage(pkg, await ids.number('package', pkg.id), driver);
  });

  app.get('/api/v1/packages/:id/download', { config: { access: { actions: ['package.read'] } } }, async (request: PackageRequest) => {
    const { pkg } = await packageOf(request);
    const link = await services.packages.downloadLink(pkg, baseUrlOf(request.raw, config));
    return { id: await ids.number('package', pkg.id), download_url: link.url };
  });

  // 409 while a group, a deployment or an update in progress needs it (RDFM: while a group has it).
  app.delete('/api/v1/packages/:id', { config: { access: { actions: ['package.manage'] } } }, async (request: PackageRequest) => {
    const { actor, org, pkg } = await packageOf(request);
    await services.packages.delete(actor, org.id, pkg.id);
    return {};
  });
}
