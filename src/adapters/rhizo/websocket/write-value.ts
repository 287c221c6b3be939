import { badRequest } from '../../../core/errors.ts';
import { sequenceInfo } from '../../../services/series/settings.ts';
import { decodeBase64 } from '../../../core/base64.ts';
import { principalOf, type RhizoConnection } from './context.ts';

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
    const image = typeof raw === 'string' ? decodeImage(raw) : undefined;
    if (!image) throw badRequest('An image value is base64 text');
    return image;
  }
  // rhizo keeps every value as text, so clients send numbers either way; a text sequence keeps the number's text.
  if (typeof raw === 'number' || typeof raw === 'string') return dataType === 'text' ? String(raw) : raw;
  throw badRequest('A sequence value is a number or a text');
}

function decodeImage(text: string): Buffer | undefined {
  try {
    return decodeBase64(text);
  } catch {
    return undefined;
  }
}
