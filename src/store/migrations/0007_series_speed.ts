import type { Kysely } from 'kysely';

/** The part of the schema this migration reads and writes, as it stood when it was written. */
interface Tables {
  sequences: { resource_id: string; rrd_state: string | null };
}

interface JsonState {
  lastUpdate: number;
  lastValue: number | null;
  pdpValue: number;
  pdpUnknown: number;
  archives: Array<{ value: number | null; unknownPdps: number }>;
}

const pageSize = 1000;

/**
 * The archive state of each sequence (sequences.rrd_state), rewritten by every ingest batch, goes
 * from JSON to little-endian doubles in base64: lastUpdate, lastValue, pdpValue, pdpUnknown, then
 * value and unknownPdps of each archive, null as NaN (services/series/state-encoding.ts). The
 * encoding is spelled out here as it was when this migration was written, so that the migration
 * keeps producing what the databases it ran on hold.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const tables = db as unknown as Kysely<Tables>;
  let after = '';
  for (;;) {
    const rows = await tables
      .selectFrom('sequences')
      .select(['resource_id', 'rrd_state'])
      .where('rrd_state', 'is not', null)
      .where('resource_id', '>', after)
      .orderBy('resource_id')
      .limit(pageSize)
      .execute();
    for (const row of rows) {
      const state = JSON.parse(row.rrd_state!) as Partial<JsonState>;
      // Only fleetd writes states; one it cannot read restarts its archives, as a new definition does.
      const encoded = typeof state.lastUpdate === 'number' && Array.isArray(state.archives) ? encode(state as JsonState) : null;
      await tables.updateTable('sequences').set({ rrd_state: encoded }).where('resource_id', '=', row.resource_id).execute();
    }
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]!.resource_id;
  }
}

function encode(state: JsonState): string {
  const numbers = [state.lastUpdate, state.lastValue ?? NaN, state.pdpValue, state.pdpUnknown, ...state.archives.flatMap((a) => [a.value ?? NaN, a.unknownPdps])];
  const bytes = Buffer.alloc(8 * numbers.length);
  numbers.forEach((n, i) => bytes.writeDoubleLE(n, 8 * i));
  return bytes.toString('base64');
}
