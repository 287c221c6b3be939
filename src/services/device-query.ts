import { sql, type Expression, type ExpressionBuilder, type SelectQueryBuilder, type SqlBool } from 'kysely';
import { badRequest } from '../core/errors.ts';
import type { Database } from '../store/schema.ts';
import type { Db, Store } from '../store/store.ts';
import { contains } from '../store/page.ts';

/** A top-level metadata value a filter compares with; nested documents and lists are not compared. */
export type MetadataValue = string | number | boolean;

export interface DeviceFilter {
  /** Text in the name, id or model. */
  q?: string;
  /** Devices carrying every one of these tags. */
  tags?: string[];
  online?: boolean;
  model?: string;
  /** Devices whose metadata has each of these top-level keys with exactly this value (and type). */
  metadata?: { [key: string]: MetadataValue };
}

/**
 * Metadata keys a filter may name. Besides being what users name keys, it keeps the key safe inside
 * the JSON path SQLite takes as text.
 */
export const metadataKeyPattern = '^[A-Za-z0-9_.:-]{1,64}$';
const metadataKey = new RegExp(metadataKeyPattern);

type DeviceRow = Database['devices'];

/**
 * The filter as it is kept (in a dynamic group): only the criteria that say something, tags once
 * each. Refuses what the query could not hold, for callers that did not check a schema.
 */
export function normalizeFilter(filter: DeviceFilter): DeviceFilter {
  const normal: DeviceFilter = {};
  if (filter.q) normal.q = filter.q;
  if (filter.tags?.length) normal.tags = [...new Set(filter.tags)];
  if (filter.online !== undefined) normal.online = filter.online;
  if (filter.model) normal.model = filter.model;
  const metadata = Object.entries(filter.metadata ?? {});
  for (const [key, value] of metadata) checkMetadata(key, value);
  if (metadata.length > 0) normal.metadata = Object.fromEntries(metadata);
  return normal;
}

function checkMetadata(key: string, value: unknown): asserts value is MetadataValue {
  if (!metadataKey.test(key)) throw badRequest(`Metadata key ${JSON.stringify(key)} may only hold letters, digits and _ . : -`);
  if (!(typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value)))) {
    throw badRequest(`Metadata value of ${key} must be a string, a number or a boolean`);
  }
}

type Condition = (eb: ExpressionBuilder<Database, 'devices'>) => Expression<SqlBool>;

/**
 * The condition "a device of `orgId` matching `filter`", for queries over `devices`: the one place
 * that says what a filter means, shared by the device list and by dynamic groups.
 */
export function deviceMatches(kind: Store['kind'], orgId: string, filter: DeviceFilter): Condition {
  return (eb) => {
    const conditions: Expression<SqlBool>[] = [eb('devices.org_id', '=', orgId)];
    if (filter.q) {
      const q = filter.q;
      conditions.push(eb.or([contains('devices.name', q), contains('devices.id', q), contains('devices.model', q)]));
    }
    for (const tag of filter.tags ?? []) {
      conditions.push(eb.exists(eb.selectFrom('device_tags').select('device_tags.tag').whereRef('device_tags.device_id', '=', 'devices.id').where('device_tags.tag', '=', tag)));
    }
    if (filter.online !== undefined) conditions.push(eb('devices.connected_node', filter.online ? 'is not' : 'is', null));
    if (filter.model) conditions.push(eb('devices.model', '=', filter.model));
    for (const [key, value] of Object.entries(filter.metadata ?? {})) conditions.push(metadataEquals(kind, key, value));
    return eb.and(conditions);
  };
}

/** Every column of the devices of `orgId` matching `filter`. */
export function selectDevices(db: Db, kind: Store['kind'], orgId: string, filter: DeviceFilter): SelectQueryBuilder<Database, 'devices', DeviceRow> {
  return db.selectFrom('devices').selectAll('devices').where(deviceMatches(kind, orgId, filter));
}

/**
 * `metadata.key = value`, the JSON type included (true is not 1, "1" is not 1). Metadata is JSON
 * text on both databases, read with each one's own JSON functions.
 */
function metadataEquals(kind: Store['kind'], key: string, value: MetadataValue): Expression<SqlBool> {
  // The key goes into SQLite's JSON path as text: nothing but the key pattern may reach it.
  checkMetadata(key, value);
  if (kind === 'postgres') {
    // jsonb equality compares type and value; numbers by value (1 = 1.0), as on SQLite.
    return sql<SqlBool>`cast(${sql.ref('devices.metadata')} as jsonb) -> cast(${key} as text) = cast(${JSON.stringify(value)} as jsonb)`;
  }
  const path = `$."${key}"`;
  const type = sql`json_type(${sql.ref('devices.metadata')}, ${path})`;
  if (typeof value === 'boolean') return sql<SqlBool>`${type} = ${value ? 'true' : 'false'}`;
  const types = typeof value === 'number' ? sql`('integer', 'real')` : sql`('text')`;
  return sql<SqlBool>`(${type} in ${types} and json_extract(${sql.ref('devices.metadata')}, ${path}) = ${value})`;
}
