import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { FleetError, forbidden } from '../../../core/errors.ts';
import { discardRest } from '../../../http/discard-rest.ts';
import type { RdfmOptions } from '../plugin.ts';

/** RDFM's local driver names a part `<upload>.<number>`: here the pull id and the part's number, from 1. */
const partName = /^([A-Za-z0-9_-]{1,100})\.([1-9][0-9]{0,4})$/;

type PartRequest = { Params: { name: string }; Querystring: { token?: unknown } };

/**
 * `PUT /local_storage_multipart/parts/<name>?token=…`: one part of a file pulled from an RDFM
 * device, to the URL `fs_file_download` gave it. The signed token is the only credential, as RDFM's
 * clients send none there: it names the pull, the part and its largest size, and expires with
 * filePullTimeout. A part is taken while its pull is pending (404 for a bad token, 403 for another
 * part's, 409 once the pull ended, 413 above its size), streamed to blob storage whatever its
 * size, and answered with S3's `ETag`. The body reaches the route unread: the scope this plugin is
 * registered in takes every content type as a stream.
 */
export async function multipartPartRoutes(app: FastifyInstance, { services }: RdfmOptions): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
  app.put<PartRequest>('/local_storage_multipart/parts/:name', { config: { access: 'public' } }, async (request, reply) => {
    const token = typeof request.query.token === 'string' ? request.query.token : '';
    const grant = await services.filePulls.partGrant(token);
    const [, pullId, number] = partName.exec(request.params.name) ?? [];
    if (pullId !== grant.pullId || Number(number) !== grant.part.number) throw forbidden('This upload URL is for another part');
    const declared = Number(request.headers['content-length']);
    if (declared > grant.part.partSize) throw new FleetError('payload_too_large', `A part is at most ${grant.part.partSize} bytes`);
    // No body at all (an empty part) reaches no parser.
    const content = request.body instanceof Readable ? request.body : Readable.from([]);
    const stored = await services.filePulls.storePart(grant, content).catch((error: unknown) => {
      discardRest(request.raw);
      throw error;
    });
    return reply.header('etag', `"${stored.sha256}"`).send('');
  });
}
