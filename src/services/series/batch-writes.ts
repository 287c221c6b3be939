import { CompiledQuery, type Transaction } from 'kysely';
import type { Database } from '../../store/schema.ts';
import type { Store } from '../../store/store.ts';

/** A value to store: sequence_id, t, num, text, data, blob_key. */
export type ValueRow = [sequenceId: string, t: number, num: number | null, text: string | null, data: Buffer | null, blobKey: string | null];
/** An archive row to store: sequence_id, archive, slot, t, value. */
export type ArchiveRow = [sequenceId: string, archive: number, slot: number, t: number, value: number | null];
/** What a batch changes of a sequence: last_t, last_num, last_text, last_blob_key, last_stored_t, rrd_state, then its id and the revision the change was made from. */
export type SequenceState = [lastT: number | null, lastNum: number | null, lastText: string | null, lastBlobKey: string | null, lastStoredT: number | null, rrdState: string | null, id: string, revision: number];

export interface BatchRows {
  values: ValueRow[];
  archiveRows: ArchiveRow[];
  sequences: SequenceState[];
}

// A value or archive row written again replaces the stored one: a sequence holds one value per
// millisecond, an archive one row per slot.
const upsertValue = ' on conflict (sequence_id, t) do update set num = excluded.num, text = excluded.text, data = excluded.data, blob_key = excluded.blob_key';
const upsertArchiveRow = ' on conflict (sequence_id, archive, slot) do update set t = excluded.t, value = excluded.value';
const sequenceColumns = ['last_t', 'last_num', 'last_text', 'last_blob_key', 'last_stored_t', 'rrd_state'];
// A sequence row is written only as the batch read it, and only while its resource is not deleted.
const liveSequence = ' and exists (select 1 from resources r where r.id = sequences.resource_id and r.deleted = 0)';

const sqliteStatements = {
  values: `insert into sequence_values (sequence_id, t, num, text, data, blob_key) values (?, ?, ?, ?, ?, ?)${upsertValue}`,
  archiveRows: `insert into rrd_rows (sequence_id, archive, slot, t, value) values (?, ?, ?, ?, ?)${upsertArchiveRow}`,
  sequences: `update sequences set ${sequenceColumns.map((c) => `${c} = ?`).join(', ')}, revision = revision + 1 where resource_id = ? and revision = ?${liveSequence}`,
};

/**
 * All of a batch in one statement of one fixed text, whatever its size: each table's rows arrive as
 * one array per column, so the statement costs one round trip and is planned the same every time.
 */
const postgresStatement =
  'with stored_values as (insert into sequence_values (sequence_id, t, num, text, data, blob_key)' +
  ` select * from unnest($1::text[], $2::bigint[], $3::double precision[], $4::text[], $5::bytea[], $6::text[])${upsertValue}),` +
  ' stored_rows as (insert into rrd_rows (sequence_id, archive, slot, t, value)' +
  ` select * from unnest($7::text[], $8::integer[], $9::integer[], $10::bigint[], $11::double precision[])${upsertArchiveRow})` +
  ` update sequences set ${sequenceColumns.map((c) => `${c} = u.${c}`).join(', ')}, revision = sequences.revision + 1` +
  ' from unnest($12::bigint[], $13::double precision[], $14::text[], $15::text[], $16::bigint[], $17::text[], $18::text[], $19::integer[])' +
  ` as u(${sequenceColumns.join(', ')}, resource_id, revision) where sequences.resource_id = u.resource_id and sequences.revision = u.revision${liveSequence}` +
  ' returning sequences.resource_id';

/** The columns of `rows`, each as one array, `width` of them. */
function columnsOf(rows: readonly unknown[][], width: number): unknown[][] {
  const columns = Array.from({ length: width }, () => new Array<unknown>(rows.length));
  rows.forEach((row, r) => {
    for (let c = 0; c < width; c++) columns[c]![r] = row[c];
  });
  return columns;
}

/**
 * Writes a batch's values, archive rows and sequence states in the transaction `tx`: on SQLite one
 * prepared statement per row (its cheapest way), on PostgreSQL one statement for everything.
 * Returns how many sequence rows were written: fewer than given when one changed since it was read.
 */
export async function writeBatchRows(store: Store, tx: Transaction<Database>, rows: BatchRows): Promise<number> {
  if (store.kind === 'sqlite') {
    await store.runEach(tx, sqliteStatements.values, rows.values);
    await store.runEach(tx, sqliteStatements.archiveRows, rows.archiveRows);
    return store.runEach(tx, sqliteStatements.sequences, rows.sequences);
  }
  // Every value and archive row belongs to a sequence the batch changes: no sequence, nothing to write.
  if (rows.sequences.length === 0) return 0;
  const parameters = [...columnsOf(rows.values, 6), ...columnsOf(rows.archiveRows, 5), ...columnsOf(rows.sequences, 8)];
  return (await tx.executeQuery(CompiledQuery.raw(postgresStatement, parameters))).rows.length;
}
