import { sql } from 'kysely';
import { badRequest, notFound } from '../../core/errors.ts';
import { rrdDefinition, type RrdDefinition } from '../../core/rrd.ts';
import type { Db } from '../../store/store.ts';
import type { Database } from '../../store/schema.ts';

export type SequenceDataType = Database['sequences']['data_type'];
export const sequenceDataTypes: readonly SequenceDataType[] = ['numeric', 'text', 'image'];

/** How a sequence keeps its values; times in seconds. */
export interface SequenceSettings {
  dataType: SequenceDataType;
  units?: string | null;
  decimalPlaces?: number | null;
  maxHistory?: number | null;
  minStorageInterval?: number;
  maxAge?: number | null;
  /** rrdtool create arguments (`--step`, `DS:`, `RRA:`); numeric sequences only. */
  rrd?: string[];
}

export interface SequenceInfo {
  id: string;
  orgId: string;
  dataType: SequenceDataType;
  units: string | null;
  decimalPlaces: number | null;
  maxHistory: number | null;
  maxAge: number | null;
  minStorageInterval: number;
  rrd: RrdDefinition | null;
  /** Time (ms) of the newest value received, stored or not; null before the first. */
  lastT: number | null;
  /** The newest value of a numeric or text sequence (images: read it through the queries). */
  lastValue: number | string | null;
}

// rhizo's creation defaults, except min_storage_interval: fleetd keeps every value unless told, the
// rhizo adapter applies rhizo's 50 s itself.
const defaultMaxHistory: Record<SequenceDataType, number> = { numeric: 100_000, text: 10_000, image: 100_000 };

function checkInteger(value: number | null | undefined, what: string, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (value === null || value === undefined) return;
  if (!Number.isInteger(value) || value < min || value > max) throw badRequest(`${what} must be a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}`);
}

function checkSettings(settings: Partial<SequenceSettings>): void {
  if (settings.dataType !== undefined && !sequenceDataTypes.includes(settings.dataType)) throw badRequest(`The data type must be one of ${sequenceDataTypes.join(', ')}`);
  if (settings.units !== undefined && settings.units !== null && (typeof settings.units !== 'string' || settings.units.length > 100)) throw badRequest('Units are text of at most 100 characters');
  checkInteger(settings.decimalPlaces, 'Decimal places', 0, 15);
  checkInteger(settings.maxHistory, 'The maximum history', 1);
  checkInteger(settings.maxAge, 'The maximum age', 1);
  const interval = settings.minStorageInterval;
  if (interval !== undefined && (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 0)) throw badRequest('The minimum storage interval must be a number of seconds of at least 0');
  if (settings.rrd !== undefined && (!Array.isArray(settings.rrd) || settings.rrd.some((a) => typeof a !== 'string'))) throw badRequest('The archive definition is a list of rrdtool create arguments');
}

/**
 * The archives a numeric sequence gets: its own arguments, else its folder's, else the defaults.
 * Other types keep no archive, and refuse one asked for explicitly.
 */
function archivesFor(dataType: SequenceDataType, own: string[] | undefined, inherited: string[] | undefined): RrdDefinition | null {
  if (dataType !== 'numeric') {
    if (own !== undefined && own.length > 0) throw badRequest('Only numeric sequences keep round-robin archives');
    return null;
  }
  return rrdDefinition(own?.length ? own : inherited?.length ? inherited : undefined);
}

/**
 * Makes the sequence row of a sequence resource, in the caller's transaction. The archive state is
 * left empty: the first value starts it at its own time, so that a device's buffered older values
 * still reach the archives.
 */
export async function insertSequence(db: Db, resource: { id: string; orgId: string }, settings: SequenceSettings, inheritedRrd?: string[]): Promise<void> {
  if (settings.dataType === undefined) throw badRequest('A sequence needs a data type');
  checkSettings(settings);
  const rrd = archivesFor(settings.dataType, settings.rrd, inheritedRrd);
  await db
    .insertInto('sequences')
    .values({
      resource_id: resource.id,
      org_id: resource.orgId,
      data_type: settings.dataType,
      units: settings.units ?? null,
      decimal_places: settings.decimalPlaces ?? null,
      max_history: settings.maxHistory === undefined ? defaultMaxHistory[settings.dataType] : settings.maxHistory,
      max_age: settings.maxAge ?? null,
      min_storage_interval: settings.minStorageInterval ?? 0,
      rrd: rrd && JSON.stringify(rrd),
      rrd_state: null,
      revision: 0,
    })
    .execute();
}

/**
 * Changes what is given of a sequence's settings. The data type stays (stored values would not fit
 * another); new archive arguments replace the archives, dropping their rows and state.
 */
export async function updateSequenceSettings(db: Db, id: string, partial: Partial<SequenceSettings>): Promise<void> {
  checkSettings(partial);
  const current = await db.selectFrom('sequences').select(['data_type']).where('resource_id', '=', id).executeTakeFirst();
  if (!current) throw notFound('Sequence');
  if (partial.dataType !== undefined && partial.dataType !== current.data_type) throw badRequest('The data type of a sequence cannot change');
  const changes: Partial<Database['sequences']> = {};
  if (partial.units !== undefined) changes.units = partial.units;
  if (partial.decimalPlaces !== undefined) changes.decimal_places = partial.decimalPlaces;
  if (partial.maxHistory !== undefined) changes.max_history = partial.maxHistory;
  if (partial.maxAge !== undefined) changes.max_age = partial.maxAge;
  if (partial.minStorageInterval !== undefined) changes.min_storage_interval = partial.minStorageInterval;
  if (partial.rrd !== undefined) {
    const rrd = archivesFor(current.data_type, partial.rrd, undefined);
    changes.rrd = rrd && JSON.stringify(rrd);
    changes.rrd_state = null;
    await db.deleteFrom('rrd_rows').where('sequence_id', '=', id).execute();
  }
  if (Object.keys(changes).length > 0) {
    await db
      .updateTable('sequences')
      .set({ ...changes, revision: sql`revision + 1` })
      .where('resource_id', '=', id)
      .execute();
  }
}

function toSequenceInfo(row: Database['sequences']): SequenceInfo {
  return {
    id: row.resource_id,
    orgId: row.org_id,
    dataType: row.data_type,
    units: row.units,
    decimalPlaces: row.decimal_places,
    maxHistory: row.max_history,
    maxAge: row.max_age,
    minStorageInterval: row.min_storage_interval,
    rrd: row.rrd === null ? null : (JSON.parse(row.rrd) as RrdDefinition),
    lastT: row.last_t,
    lastValue: row.data_type === 'numeric' ? row.last_num : row.data_type === 'text' ? row.last_text : null,
  };
}

/** The settings and newest value of a sequence; undefined when there is none with that resource id. */
export async function sequenceInfo(db: Db, id: string): Promise<SequenceInfo | undefined> {
  const row = await db.selectFrom('sequences').selectAll().where('resource_id', '=', id).executeTakeFirst();
  return row && toSequenceInfo(row);
}
