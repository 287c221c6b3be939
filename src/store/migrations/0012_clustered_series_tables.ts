import { PostgresAdapter, sql, type Kysely } from 'kysely';

/**
 * On SQLite, sequence values and archive rows are kept in the order of their primary key itself
 * (`without rowid`) instead of a table in insertion order plus an index of the key: a value
 * written is one insert into its sequence's place instead of two, and an archive row rewritten is
 * one lookup instead of two. The tables are copied, which takes a while on a large database, once.
 *
 * PostgreSQL keeps its tables: there every table is a heap with its key as an index.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) return;
  await sql`create table sequence_values_clustered (
    sequence_id text not null references sequences (resource_id) on delete cascade,
    t bigint not null,
    num double precision,
    text text,
    data bytea,
    blob_key text,
    primary key (sequence_id, t)
  ) without rowid`.execute(db);
  await sql`insert into sequence_values_clustered select sequence_id, t, num, text, data, blob_key from sequence_values`.execute(db);
  await sql`drop table sequence_values`.execute(db);
  await sql`alter table sequence_values_clustered rename to sequence_values`.execute(db);

  await sql`create table rrd_rows_clustered (
    sequence_id text not null references sequences (resource_id) on delete cascade,
    archive integer not null,
    slot integer not null,
    t bigint not null,
    value double precision,
    primary key (sequence_id, archive, slot)
  ) without rowid`.execute(db);
  await sql`insert into rrd_rows_clustered select sequence_id, archive, slot, t, value from rrd_rows`.execute(db);
  await sql`drop table rrd_rows`.execute(db);
  await sql`alter table rrd_rows_clustered rename to rrd_rows`.execute(db);
}
