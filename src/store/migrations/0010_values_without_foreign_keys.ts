import { PostgresAdapter, sql, type Kysely } from 'kysely';

/**
 * On PostgreSQL, sequence values and archive rows lose their foreign keys to sequences: their
 * checks were about a third of an ingest batch's statement (a trigger call per row), when the batch
 * writes its sequences' rows in the same transaction anyway and is rolled back unless each of them
 * is there (services/series/write-batch.ts). What the cascade did, removing an organization does
 * itself (services/organizations.ts); sequences are otherwise only ever marked deleted.
 *
 * SQLite keeps them: there a check is a lookup in pages the batch has just read, too cheap to
 * measure, and dropping a constraint would mean copying both tables.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  await sql`alter table sequence_values drop constraint sequence_values_sequence_id_fkey`.execute(db);
  await sql`alter table rrd_rows drop constraint rrd_rows_sequence_id_fkey`.execute(db);
}
