import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { Config } from '../../config/keys.ts';
import type { Services } from '../../services/index.ts';
import type { Package as PackageValue } from '../../services/packages/package.ts';
import { actorOf } from '../access.ts';
import { baseUrlOf } from '../base-url.ts';
import { receivePackageForm } from '../package-form.ts';
import { sendContent } from '../ranged-content.ts';
import { authErrors, errors, Nullable, Page, PageQuery, Timestamp } from '../schemas.ts';
import { OrgParams } from './organizations.ts';

export const Package = Type.Object({
  id: Type.String(),
  orgId: Type.String(),
  version: Type.String(),
  deviceType: Type.String(),
  metadata: Type.Record(Type.String(), Type.String(), { description: 'Free string keys given at upload; requires:<key> ones are the conditions of a delta package' }),
  size: Type.Integer({ description: 'Bytes' }),
  sha256: Type.String({ description: 'Hex SHA-256 of the content' }),
  signature: Nullable(Type.String({ description: 'Base64 detached Ed25519 signature over the 32 bytes of the SHA-256 digest' })),
  signingKeyId: Nullable(Type.String({ description: 'The organization signing key the signature verified with' })),
  createdBy: Type.String(),
  createdAt: Timestamp,
  readyAt: Timestamp,
});
const Link = Type.Object({ url: Type.String({ description: 'Downloads the package without credentials until expiresAt' }), expiresAt: Timestamp });
const PackageParams = Type.Object({ ...OrgParams.properties, packageId: Type.String({ minLength: 1, maxLength: 100 }) });
// A wildcard, not a :token parameter: the router refuses parameters over 100 characters, and tokens are longer.
const TokenParams = Type.Object({ '*': Type.String({ minLength: 1, maxLength: 2000, description: 'The token of the link' }) });
/** Sent as it is (a stream is never serialized); declared for the document. */
const Content = Type.Unsafe<Buffer>({ type: 'string', format: 'binary', description: 'The bytes (application/octet-stream); a Range asks for part of them' });
const downloadResponses = {
  200: Content,
  206: Content,
  304: Type.Null({ description: 'If-None-Match named the ETag' }),
  416: Type.Ref('ErrorBody'),
};
const downloadDescription =
  'Accept-Ranges: bytes. One Range (bytes=a-b, a-, -n) gives 206 with Content-Range, a range starting past the end 416; If-Range with the ETag keeps a range, anything else sends everything; ETag is the quoted SHA-256, and If-None-Match with it gives 304.';

/** A package as the download helper serves it. */
const downloadable = (services: Services, pkg: PackageValue) => ({
  size: pkg.size,
  sha256: pkg.sha256,
  fileName: `${pkg.deviceType}-${pkg.version}`,
  open: (range?: { start: number; end: number }) => services.packages.open(pkg, range),
});

/** OTA packages: upload, list, delete, download (with credentials, or through a signed link). */
export const packageRoutes: FastifyPluginAsyncTypebox<{ services: Services; config: Config }> = async (app, { services, config }) => {
  const { packages } = services;

  // Multipart only in here: the plugin is registered in this plugin's own scope, so other routes keep refusing forms.
  await app.register(multipart);

  app.post(
    '/orgs/:orgId/packages',
    {
      config: { access: { actions: ['package.manage'] } },
      schema: {
        tags: ['packages'],
        summary: 'Upload a package (admins)',
        description:
          'multipart/form-data: text fields version and deviceType (required), signature (optional), metadata (optional JSON object of strings), any other field one metadata key; then the part named file, last. The file streams to blob storage; the package is seen only once completely stored.',
        consumes: ['multipart/form-data'],
        params: OrgParams,
        response: { 201: Package, ...authErrors(404, 413, 415) },
      },
    },
    async (request, reply) => {
      const actor = actorOf(request);
      await packages.authorizeUpload(actor, request.params.orgId);
      const created = await receivePackageForm(request, config.maxPackageSize, (input, content) => packages.upload(actor, request.params.orgId, input, content));
      return reply.status(201).send(created);
    },
  );

  app.get(
    '/orgs/:orgId/packages',
    {
      config: { access: { actions: ['package.read'] } },
      schema: {
        tags: ['packages'],
        summary: "List the organization's packages",
        params: OrgParams,
        querystring: Type.Object(
          { ...PageQuery, deviceType: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })), version: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
          { additionalProperties: false },
        ),
        response: { 200: Page(Package), ...authErrors(404) },
      },
    },
    async (request) => {
      const { deviceType, version, ...page } = request.query;
      return packages.list(actorOf(request).principal, request.params.orgId, { deviceType, version }, page);
    },
  );

  app.get(
    '/orgs/:orgId/packages/:packageId',
    {
      config: { access: { actions: ['package.read'] } },
      schema: { tags: ['packages'], summary: 'Get a package', params: PackageParams, response: { 200: Package, ...authErrors(404) } },
    },
    async (request) => packages.get(actorOf(request).principal, request.params.orgId, request.params.packageId),
  );

  app.delete(
    '/orgs/:orgId/packages/:packageId',
    {
      config: { access: { actions: ['package.manage'] } },
      schema: {
        tags: ['packages'],
        summary: 'Delete a package (admins)',
        description: 'Refused (409) while a group lists it, an unfinished deployment hands it out, or a device is updating to it.',
        params: PackageParams,
        response: { 204: Type.Null(), ...authErrors(404, 409) },
      },
    },
    async (request, reply) => {
      await packages.delete(actorOf(request), request.params.orgId, request.params.packageId);
      return reply.status(204).send(null);
    },
  );

  const downloadOwn = async (request: FastifyRequest<{ Params: { orgId: string; packageId: string } }>, reply: FastifyReply) => {
    const pkg = await packages.get(actorOf(request).principal, request.params.orgId, request.params.packageId);
    return sendContent(request, reply, downloadable(services, pkg));
  };
  const contentSchema = { tags: ['packages'], summary: "Download a package's content", description: downloadDescription, params: PackageParams, response: { ...downloadResponses, ...authErrors(404) } };
  // HEAD is declared by hand: Fastify's own would read the whole content to throw it away.
  app.get('/orgs/:orgId/packages/:packageId/content', { exposeHeadRoute: false, config: { access: { actions: ['package.read'] } }, schema: contentSchema }, downloadOwn);
  app.head('/orgs/:orgId/packages/:packageId/content', { config: { access: { actions: ['package.read'] } }, schema: contentSchema }, downloadOwn);

  app.post(
    '/orgs/:orgId/packages/:packageId/link',
    {
      config: { access: { actions: ['package.read'] } },
      schema: {
        tags: ['packages'],
        summary: 'A short-lived link that downloads the package without credentials',
        description: 'Valid for packageLinkTtl seconds: a presigned URL with S3 blob storage, else /api/packages/download/<token> on this server.',
        params: PackageParams,
        response: { 200: Link, ...authErrors(404) },
      },
    },
    async (request) => {
      const { principal } = actorOf(request);
      const pkg = await packages.get(principal, request.params.orgId, request.params.packageId);
      return packages.downloadLink(pkg, baseUrlOf(request.raw, config), { deviceId: principal.kind === 'device' ? principal.deviceId : undefined });
    },
  );

  const downloadByLink = async (request: FastifyRequest<{ Params: { '*': string } }>, reply: FastifyReply) =>
    sendContent(request, reply, downloadable(services, await packages.byLink(request.params['*'])));
  const linkSchema = {
    tags: ['packages'],
    summary: 'Download a package through a signed link',
    description: `The token is the credential: an invalid or expired one gives 404. ${downloadDescription}`,
    params: TokenParams,
    response: { ...downloadResponses, ...errors(404) },
  };
  app.get('/packages/download/*', { exposeHeadRoute: false, config: { access: 'public' }, schema: linkSchema }, downloadByLink);
  app.head('/packages/download/*', { config: { access: 'public' }, schema: linkSchema }, downloadByLink);
};
