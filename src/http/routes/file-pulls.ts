import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { FleetError } from '../../core/errors.ts';
import type { Hub } from '../../hub/hub.ts';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { baseUrlOf } from '../base-url.ts';
import { discardRest } from '../discard-rest.ts';
import { sendContent } from '../ranged-content.ts';
import { authErrors, errors, Nullable, Timestamp } from '../schemas.ts';
import { callingDevice } from './device-self.ts';
import { OrgParams } from './organizations.ts';

const PullId = Type.String({ minLength: 1, maxLength: 100 });
const FilePull = Type.Object({
  id: Type.String(),
  deviceId: Type.String(),
  path: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('uploading'), Type.Literal('done'), Type.Literal('failed')]),
  size: Nullable(Type.Integer()),
  sha256: Nullable(Type.String({ description: 'Hex SHA-256 of the bytes received' })),
  error: Nullable(Type.String()),
  requestedBy: Type.Object({ type: Type.String(), id: Type.String() }),
  createdAt: Timestamp,
  finishedAt: Nullable(Timestamp),
});
const PullParams = Type.Object({ ...OrgParams.properties, pullId: PullId });

/** The last segment of the device's path, for the downloaded file's name. */
const fileNameOf = (path: string) => path.split(/[/\\]/).filter(Boolean).pop() ?? 'file';

/**
 * Files pulled from devices: an admin asks, the device is told (`Fleetd.UploadFile`) and PUTs the
 * bytes with its own credential, or says why it cannot; the file is then downloaded like a package.
 */
export const filePullRoutes: FastifyPluginAsyncTypebox<{ services: Services; hub: Hub }> = async (app, { services, hub }) => {
  const { filePulls } = services;

  app.post(
    '/orgs/:orgId/devices/:deviceId/file-pulls',
    {
      config: { access: { actions: ['device.files'] } },
      schema: {
        tags: ['file pulls'],
        summary: 'Pull a file from the device into blob storage (admins); the device must offer filesystem and be connected',
        description: 'Answers once the device took the request; follow the pull at /orgs/{orgId}/file-pulls/{pullId}. 503 when the device is offline.',
        params: Type.Object({ ...OrgParams.properties, deviceId: Type.String({ minLength: 1, maxLength: 100 }) }),
        body: Type.Object({ path: Type.String({ minLength: 1, maxLength: 4096, description: 'The path on the device' }) }, { additionalProperties: false }),
        response: { 202: FilePull, ...authErrors(404, 409, 502, 503, 504) },
      },
    },
    async (request, reply) => {
      const pull = await filePulls.request(actorOf(request), request.params.orgId, request.params.deviceId, request.body.path);
      const url = `${baseUrlOf(request.raw, hub.config)}/api/devices/file-pulls/${pull.id}/content`;
      try {
        await hub.links.call(pull.deviceId, 'Fleetd.UploadFile', { pullId: pull.id, path: pull.path, url });
      } catch (error) {
        await filePulls.fail(pull.id, `the device did not take the request: ${error instanceof FleetError ? error.message : 'internal error'}`);
        throw error;
      }
      return reply.status(202).send(pull);
    },
  );

  app.get(
    '/orgs/:orgId/file-pulls/:pullId',
    {
      config: { access: { actions: ['device.files'] } },
      schema: { tags: ['file pulls'], summary: 'A file pull (admins)', params: PullParams, response: { 200: FilePull, ...authErrors(404) } },
    },
    async (request) => filePulls.get(actorOf(request).principal, request.params.orgId, request.params.pullId),
  );

  app.get(
    '/orgs/:orgId/file-pulls/:pullId/content',
    {
      config: { access: { actions: ['device.files'] } },
      schema: {
        tags: ['file pulls'],
        summary: 'Download a pulled file (admins): Range, If-Range, ETag as for packages',
        params: PullParams,
        response: { 200: Type.Unknown({ description: 'The bytes' }), 206: Type.Unknown({ description: 'The bytes of the range' }), 304: Type.Null(), ...authErrors(404, 409, 416) },
      },
    },
    async (request, reply) => {
      const file = await filePulls.download(actorOf(request).principal, request.params.orgId, request.params.pullId);
      return sendContent(request, reply, { size: file.size, sha256: file.sha256, fileName: fileNameOf(file.pull.path), open: file.open });
    },
  );

  // A signed link's download, for clients that cannot send credentials (rdfm-mgmt's file download).
  const downloadByLink = async (request: FastifyRequest<{ Params: { '*': string } }>, reply: FastifyReply) => {
    const file = await filePulls.byLink(request.params['*']);
    return sendContent(request, reply, { size: file.size, sha256: file.sha256, fileName: fileNameOf(file.pull.path), open: file.open });
  };
  const linkSchema = {
    tags: ['file pulls'],
    summary: 'Download a pulled file through a signed link: Range, If-Range, ETag as for packages',
    description: 'The token is the credential: an invalid or expired one gives 404, a pull without its file yet 409.',
    params: Type.Object({ '*': Type.String({ minLength: 1, maxLength: 2000, description: 'The token of the link' }) }),
    response: { 200: Type.Unknown({ description: 'The bytes' }), 206: Type.Unknown({ description: 'The bytes of the range' }), 304: Type.Null(), ...errors(404, 409, 416) },
  };
  // HEAD is declared by hand: Fastify's own would read the whole content to throw it away.
  app.get('/file-pulls/download/*', { exposeHeadRoute: false, config: { access: 'public' }, schema: linkSchema }, downloadByLink);
  app.head('/file-pulls/download/*', { config: { access: 'public' }, schema: linkSchema }, downloadByLink);

  app.post(
    '/devices/file-pulls/:pullId/content/failure',
    {
      config: { access: { actions: ['device.report'] } },
      schema: {
        tags: ['file pulls'],
        summary: 'A device says it cannot send a file pulled from it; only that device may',
        params: Type.Object({ pullId: PullId }),
        body: Type.Object({ error: Type.String({ minLength: 1, maxLength: 1000 }) }, { additionalProperties: false }),
        response: { 200: FilePull, ...authErrors(404, 409) },
      },
    },
    async (request) => filePulls.reportFailure(callingDevice(request), request.params.pullId, request.body.error),
  );

  // The upload takes any body as raw bytes, streamed: its own scope, where no parser reads it first.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
    scope.withTypeProvider<TypeBoxTypeProvider>().put(
      '/devices/file-pulls/:pullId/content',
      {
        config: { access: { actions: ['device.report'] } },
        schema: {
          tags: ['file pulls'],
          summary: 'A device sends the bytes of a file pulled from it, once; only that device may',
          description: 'Any content type; streamed to blob storage, at most maxFilePullSize bytes (413).',
          params: Type.Object({ pullId: PullId }),
          response: { 200: FilePull, ...authErrors(404, 409, 413) },
        },
      },
      async (request) => {
        const device = callingDevice(request);
        const length = request.headers['content-length'];
        return filePulls.receive(device, request.params.pullId, request.raw, length === undefined ? undefined : Number(length)).catch((error: unknown) => {
          discardRest(request.raw);
          throw error;
        });
      },
    );
  });
};
