import { sql, type Kysely } from 'kysely';

/**
 * A revision number on each sequence, raised by every write of its row (values and settings alike).
 * A node keeps the sequences it writes to in memory between ingest batches and writes a batch only
 * where the stored revision is still the one it read, so that it need not read every row again
 * (services/series/sequence-heads.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('sequences').addColumn('revision', 'integer', (c) => c.notNull().defaultTo(sql`0`)).execute();
}
