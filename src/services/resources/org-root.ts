import { orgRootPermissions } from '../../core/resource-access.ts';
import { notFound } from '../../core/errors.ts';
import type { Db } from '../../store/store.ts';
import { insertIfFree, newResourceRow } from './insert.ts';
import type { ResourceRow } from './resource-info.ts';

export const findLive = (db: Db, orgId: string, relativePath: string): Promise<ResourceRow | undefined> =>
  db.selectFrom('resources').selectAll().where('org_id', '=', orgId).where('path', '=', relativePath).where('deleted', '=', 0).executeTakeFirst();

/**
 * The organization's root folder, made on first use: organizations (and those made before the
 * resource tree existed) get one without a hook in every way an organization is created.
 */
export async function ensureOrgRoot(db: Db, orgId: string): Promise<ResourceRow> {
  const existing = await findLive(db, orgId, '');
  if (existing) return existing;
  const org = await db.selectFrom('organizations').select('slug').where('id', '=', orgId).executeTakeFirst();
  if (!org) throw notFound('Organization');
  // Another node may make it at the same moment: whichever insert wins, both read the same row back.
  await insertIfFree(db, newResourceRow({ orgId, parent: null, name: org.slug, type: 'organization_folder', permissions: orgRootPermissions(orgId) }));
  return (await findLive(db, orgId, ''))!;
}
