import type { Kysely } from 'kysely';

/**
 * How many parts a pull's device was given upload URLs for (RDFM uploads in parts), null for a pull
 * uploaded whole: so that the parts of a pull that times out are found and removed.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('file_pulls').addColumn('parts', 'integer').execute();
}
