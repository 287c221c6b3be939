import type { FastifyInstance } from 'fastify';
import { badRequest } from '../../../core/errors.ts';
import { actorOf } from '../../../http/access.ts';
import { Params } from './forms.ts';
import type { RhizoOptions } from './plugin.ts';

/**
 * rhizo's bulk sequence update: `values` (JSON: absolute path → value) at one `timestamp`. A
 * controller's clock is corrected for drift (Series.recordMany keeps the correction in its folder).
 * As in rhizo, unknown sequences and ones the caller may not write are skipped without a word; the
 * answer is `null` once every value that was taken is committed.
 */

/** rhizo's clients send a few dozen values at a time; this bounds the work one request may ask. */
const maxValues = 10_000;

export async function bulkUpdateRoutes(app: FastifyInstance, { services, bodyLimit }: RhizoOptions): Promise<void> {
  app.put('/api/v1/resources', { config: { access: { actions: ['resource.write'] } } }, async (request) => {
    const actor = actorOf(request);
    const params = await Params.of(request, bodyLimit);
    const given = params.json('values');
    if (given === undefined) throw badRequest('values is required: a JSON object of sequence paths and values');
    const timestamp = params.timestamp('timestamp');
    const entries = Object.entries(given);
    if (entries.length > maxValues) throw badRequest(`At most ${maxValues} values per update`);
    const values: Record<string, string | number> = {};
    for (const [path, value] of entries) {
      if (!path.startsWith('/')) throw badRequest(`Sequence paths are absolute: ${JSON.stringify(path.slice(0, 100))}`);
      if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) values[path] = value;
      else if (typeof value === 'boolean') values[path] = String(value);
      else throw badRequest(`The value of ${path.slice(0, 100)} is not text or a number`);
    }
    // Per-value refusals (unknown, forbidden, of the wrong type) are what rhizo skips silently.
    await services.series.recordMany(actor, { values, timestamp, deviceClock: true });
    return null;
  });
}
