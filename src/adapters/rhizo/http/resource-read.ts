import type { FastifyReply } from 'fastify';
import type { Principal } from '../../../core/access.ts';
import { FleetError } from '../../../core/errors.ts';
import type { ResourceInfo } from '../../../services/resources/resource-info.ts';
import type { Services } from '../../../services/index.ts';
import { maxRawLimit } from '../../../services/series/queries.ts';
import { sequenceInfo } from '../../../services/series/settings.ts';
import { resourceDict, resourceTypeNamed } from './dicts.ts';
import { csvTimestamp, type Params } from './forms.ts';
import { allPages } from '../../../store/page.ts';

/** GET /api/v1/resources/<path> once the resource is found: metadata, a listing, sequence values or file content. */

/** A resource's rhizo dict, with what the store keeps beside it (a sequence's settings, a file's size and hash). */
export async function dictOf(services: Services, r: ResourceInfo, extended: boolean, withControllerStatus = false): Promise<Record<string, unknown>> {
  if (!extended) return resourceDict(r, false);
  const sequence = r.type === 'sequence' ? await sequenceInfo(services.store.db, r.id) : undefined;
  const { size, sha256 } = r.systemAttributes;
  // rhizo's `hash` was a SHA-1; fleetd keeps (and gives) the SHA-256 of the content.
  const file = r.type === 'file' && typeof size === 'number' && typeof sha256 === 'string' ? { size, hash: sha256 } : undefined;
  return resourceDict(r, true, { sequence, file, withControllerStatus });
}

export async function listing(services: Services, p: Principal | undefined, folder: ResourceInfo, params: Params): Promise<unknown[]> {
  const recursive = params.flag('recursive');
  const typeName = params.string('type');
  const type = typeName ? resourceTypeNamed(typeName) : undefined;
  const filter = params.string('filter') || undefined;
  const extended = params.flag('extended');
  const children = await allPages((page) => services.resources.list(p, folder.path, { recursive, type, filter, ...page }));
  return Promise.all(
    children.map(async (child) => {
      const dict = await dictOf(services, child, extended, true);
      return recursive ? { ...dict, path: child.path } : dict;
    }),
  );
}

/** A Content-Disposition that survives any resource name: ASCII fallback plus the UTF-8 name (RFC 6266). */
const attachment = (name: string) => `attachment; filename="${name.replace(/[^\x20-\x7e]|["\\]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`;

const text = (value: number | string | Buffer) => (Buffer.isBuffer(value) ? value.toString('base64') : String(value));

/**
 * A sequence read: the current value as raw text (an image as its bytes), or, when a count above 1
 * or a time bound is given, the newest `count` values in the bounds, oldest first, as JSON or CSV.
 */
export async function sequenceRead(services: Services, p: Principal | undefined, r: ResourceInfo, params: Params, reply: FastifyReply): Promise<FastifyReply> {
  const count = params.integer('count', 1, maxRawLimit) ?? 1;
  const start = params.timestamp('start_timestamp');
  const end = params.timestamp('end_timestamp');
  if (count > 1 || start !== undefined || end !== undefined) {
    const raw = await services.series.raw(p, r.path, { start, end, limit: count, order: 'desc' });
    const values = raw.values.reverse();
    if (params.flag('download')) {
      const lines = values.map((v) => `${csvTimestamp(v.t)},${text(v.value)}\n`);
      return reply
        .type('application/octet-stream')
        .header('content-disposition', attachment(`${r.name}.csv`))
        .send(`utc_timestamp,value\n${lines.join('')}`);
    }
    return reply.send({ name: r.name, path: r.path, units: raw.units, timestamps: values.map((v) => v.t / 1000), values: values.map((v) => text(v.value)) });
  }
  if (params.has('rev')) throw new FleetError('bad_request', 'rev is not supported for sequences: their values are addressed by time (use start_timestamp/end_timestamp)');
  const { dataType, last } = await services.series.last(p, r.path);
  if (dataType === 'image') return reply.type('image/jpeg').send(last && Buffer.isBuffer(last.value) ? last.value : Buffer.alloc(0));
  return reply.type('text/plain; charset=utf-8').send(last ? text(last.value) : '');
}

/** A file's content; rhizo answers 404 for an empty one. */
export async function fileRead(services: Services, p: Principal | undefined, r: ResourceInfo, params: Params, reply: FastifyReply): Promise<FastifyReply> {
  const { content } = await services.resources.readFile(p, r.path, params.string('rev') || undefined);
  if (content.length === 0) throw new FleetError('not_found', `${r.path} is empty`);
  reply.type('application/octet-stream');
  if (params.flag('download')) reply.header('content-disposition', attachment(r.name));
  return reply.send(content);
}
