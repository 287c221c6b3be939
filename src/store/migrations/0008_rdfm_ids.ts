import type { Kysely } from 'kysely';

/**
 * Free metadata on groups, as devices and packages have: RDFM's groups are nothing but metadata
 * (`rdfm.group.name`, `rdfm.group.description` and any other key).
 *
 * RDFM names devices, packages, groups, logs and permissions by integers, fleetd by text ids: each
 * pair is kept here, numbered per kind in the order RDFM's clients first see them. Numbers are never
 * reused, as RDFM's autoincrement ids are not.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('rdfm_ids')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('number', 'integer', (c) => c.notNull())
    .addColumn('fleetd_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('rdfm_ids_pk', ['kind', 'number'])
    .addUniqueConstraint('rdfm_ids_fleetd', ['kind', 'fleetd_id'])
    .execute();
  await db.schema.alterTable('device_groups').addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}')).execute();
}
