import { badRequest } from '../../../core/errors.ts';
import { sequenceInfo } from '../../../services/series/settings.ts';
import { principalOf, type RhizoConnection } from './context.ts';

const base64Pattern = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * A value written to a sequence from a message (update_sequence, write_resource): stored at `t`
 * (default now) once committed. Image sequences take base64, as rhizo clients send them.
 */
export async function writeValue(connection: RhizoConnection, path: string, raw: unknown, t?: number): Promise<void> {
  const { resources, series, store } = connection.hub.services;
  const resource = await resources.resolve(principalOf(connection), path, 'write');
  const info = resource.type === 'sequence' ? await sequenceInfo(store.db, resource.id) : undefined;
  if (!info) throw badRequest(`${path} is not a sequence`);
  await series.record(connection.actor, resource.path, valueFor(info.dataType, raw), t);
}

function valueFor(dataType: 'numeric' | 'text' | 'image', raw: unknown): number | string | Buffer {
  if (dataType === 'image') {
    if (typeof raw !== 'string' || raw.length % 4 !== 0 || !base64Pattern.test(raw)) throw badRequest('An image value is base64 text');
    return Buffer.from(raw, 'base64');
  }
  // rhizo keeps every value as text, so clients send numbers either way; a text sequence keeps the number's text.
  if (typeof raw === 'number' || typeof raw === 'string') return dataType === 'text' ? String(raw) : raw;
  throw badRequest('A sequence value is a number or a text');
}
