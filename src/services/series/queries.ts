import type { BlobStore } from '../../blob/blob-store.ts';
import { badRequest, FleetError } from '../../core/errors.ts';
import type { ConsolidationFunction, RrdDefinition } from '../../core/rrd.ts';
import { archiveSeries, chooseArchive } from '../../core/rrd-archive.ts';
import type { Database } from '../../store/schema.ts';
import type { Db } from '../../store/store.ts';

/** A stored value; images as their bytes. Times in milliseconds since the epoch. */
export interface SeriesValue {
  t: number;
  value: number | string | Buffer;
}

export interface RawQuery {
  /** Inclusive bounds, ms. */
  start?: number;
  end?: number;
  limit?: number;
  order?: 'asc' | 'desc';
}

export interface ConsolidatedQuery {
  /** Inclusive bounds, ms. */
  start: number;
  end: number;
  cf?: ConsolidationFunction;
  /** Seconds per point wanted; fleetd picks the archive closest to it. Without it, the finest archive covering the range. */
  resolution?: number;
}

export interface ConsolidatedSeries {
  cf: ConsolidationFunction;
  /** Seconds per point of the archive read. */
  resolution: number;
  /** [end of the point's interval in ms, value or null when unknown]. */
  points: Array<[number, number | null]>;
}

export const defaultRawLimit = 1000;
export const maxRawLimit = 100_000;
/** A consolidated answer larger than this asks for a coarser resolution. */
const maxPoints = 100_000;

type ValueRow = Pick<Database['sequence_values'], 't' | 'num' | 'text' | 'data' | 'blob_key'>;

async function toValue(blobs: BlobStore, row: ValueRow): Promise<SeriesValue> {
  if (row.num !== null) return { t: row.t, value: row.num };
  if (row.text !== null) return { t: row.t, value: row.text };
  if (row.data !== null) return { t: row.t, value: row.data };
  const content = row.blob_key === null ? undefined : await blobs.get(row.blob_key);
  if (!content) throw new FleetError('internal', `The image stored at ${row.t} is missing from blob storage`);
  return { t: row.t, value: content };
}

/** Stored values of a sequence in [start, end], oldest or newest first, at most `limit`. */
export async function rawValues(db: Db, blobs: BlobStore, sequenceId: string, query: RawQuery): Promise<SeriesValue[]> {
  const limit = query.limit ?? defaultRawLimit;
  if (!Number.isInteger(limit) || limit < 1 || limit > maxRawLimit) throw badRequest(`The limit is a whole number from 1 to ${maxRawLimit}`);
  if (query.start !== undefined && query.end !== undefined && query.start > query.end) throw badRequest('The start is after the end');
  let select = db.selectFrom('sequence_values').select(['t', 'num', 'text', 'data', 'blob_key']).where('sequence_id', '=', sequenceId);
  if (query.start !== undefined) select = select.where('t', '>=', query.start);
  if (query.end !== undefined) select = select.where('t', '<=', query.end);
  const rows = await select.orderBy('t', query.order ?? 'asc').limit(limit).execute();
  return Promise.all(rows.map((row) => toValue(blobs, row)));
}

/**
 * The newest value received: numbers and text from the sequence itself (including one that
 * min_storage_interval kept out of the history), images from their newest stored value.
 */
export async function lastValue(db: Db, blobs: BlobStore, sequence: Database['sequences']): Promise<SeriesValue | null> {
  if (sequence.last_t === null) return null;
  if (sequence.last_num !== null) return { t: sequence.last_t, value: sequence.last_num };
  if (sequence.last_text !== null) return { t: sequence.last_t, value: sequence.last_text };
  if (sequence.last_blob_key !== null) {
    const content = await blobs.get(sequence.last_blob_key);
    if (content) return { t: sequence.last_t, value: content };
  }
  const [newest] = await rawValues(db, blobs, sequence.resource_id, { order: 'desc', limit: 1 });
  return newest ?? null;
}

/** The sequence's archive that fits the range (and resolution) best, as points on its grid. */
export async function consolidatedValues(db: Db, sequence: Database['sequences'], query: ConsolidatedQuery, now = Date.now()): Promise<ConsolidatedSeries> {
  if (sequence.rrd === null) throw badRequest(`A ${sequence.data_type} sequence keeps no round-robin archive: ask for its raw values`);
  if (!(query.start <= query.end)) throw badRequest('The start is after the end');
  if (query.resolution !== undefined && !(query.resolution > 0)) throw badRequest('The resolution is a number of seconds above 0');
  const definition = JSON.parse(sequence.rrd) as RrdDefinition;
  const cf = query.cf ?? 'AVERAGE';
  const start = Math.floor(query.start / 1000);
  const end = Math.ceil(query.end / 1000);
  const { archive, resolution } = chooseArchive(definition, cf, start, end, now / 1000, query.resolution);
  if ((end - start) / resolution > maxPoints) throw badRequest(`That is more than ${maxPoints} points: ask for a coarser resolution or a shorter range`);
  const rows = await db
    .selectFrom('rrd_rows')
    .select(['slot', 't', 'value'])
    .where('sequence_id', '=', sequence.resource_id)
    .where('archive', '=', archive)
    .where('t', '>=', start - resolution)
    .where('t', '<=', end + resolution)
    .execute();
  const points = archiveSeries(definition, archive, rows, start, end).map(([t, value]): [number, number | null] => [t * 1000, value]);
  return { cf: definition.archives[archive]!.cf, resolution, points };
}
