import type { Expression, ExpressionBuilder, SqlBool } from 'kysely';
import type { Database } from '../../../store/schema.ts';
import type { Db } from '../../../store/store.ts';
import { maxListed } from './all-pages.ts';

/** Which logs a route names: of some devices, by name, between two times (ISO, inclusive) of the devices' clocks. */
export interface LogSelection {
  deviceIds: readonly string[];
  name?: string;
  since?: string;
  to?: string;
}

export type LogRow = Database['device_logs'];

// Device ids per query: a group's members may be many.
const chunkSize = 500;

function chunks(ids: readonly string[]): string[][] {
  const out: string[][] = [];
  for (let start = 0; start < ids.length; start += chunkSize) out.push(ids.slice(start, start + chunkSize));
  return out;
}

/** "The log is one of `deviceIds` in `orgId` that the selection names". */
function selected(orgId: string, deviceIds: string[], selection: LogSelection): (eb: ExpressionBuilder<Database, 'device_logs'>) => Expression<SqlBool> {
  return (eb) => {
    const conditions: Expression<SqlBool>[] = [eb('org_id', '=', orgId), eb('device_id', 'in', deviceIds)];
    if (selection.name !== undefined) conditions.push(eb('name', '=', selection.name));
    if (selection.since !== undefined) conditions.push(eb('at', '>=', selection.since));
    if (selection.to !== undefined) conditions.push(eb('at', '<=', selection.to));
    return eb.and(conditions);
  };
}

// As the queries order them: by code unit, not by locale.
const newestFirst = (a: LogRow, b: LogRow) => (a.at !== b.at ? (a.at < b.at ? 1 : -1) : a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/**
 * The device logs RDFM's devices send (device/logs.ts), always within one organization: the
 * management routes authorize the caller in it and ask for nothing beyond it.
 */
export class LogStore {
  constructor(private readonly db: Db) {}

  /** The newest maxListed logs selected, newest first (by the device's timestamp, as RDFM orders them). */
  async list(orgId: string, selection: LogSelection): Promise<LogRow[]> {
    const rows: LogRow[] = [];
    for (const ids of chunks(selection.deviceIds)) {
      const found = await this.db
        .selectFrom('device_logs')
        .selectAll()
        .where(selected(orgId, ids, selection))
        .orderBy('at', 'desc')
        .orderBy('id', 'desc')
        .limit(maxListed)
        .execute();
      rows.push(...found);
    }
    return rows.sort(newestFirst).slice(0, maxListed);
  }

  async delete(orgId: string, selection: LogSelection): Promise<void> {
    for (const ids of chunks(selection.deviceIds)) await this.db.deleteFrom('device_logs').where(selected(orgId, ids, selection)).execute();
  }

  async get(orgId: string, logId: string): Promise<LogRow | undefined> {
    return this.db.selectFrom('device_logs').selectAll().where('org_id', '=', orgId).where('id', '=', logId).executeTakeFirst();
  }

  /** Whether the log was there to delete. */
  async deleteOne(orgId: string, logId: string): Promise<boolean> {
    const deleted = await this.db.deleteFrom('device_logs').where('org_id', '=', orgId).where('id', '=', logId).executeTakeFirst();
    return deleted.numDeletedRows > 0n;
  }
}
