import { sql } from 'kysely';
import type { Actor } from '../../../services/actor.ts';
import { recordAudit } from '../../../services/audit.ts';
import type { ResourceInfo } from '../../../services/resources/resource-info.ts';
import type { Services } from '../../../services/index.ts';

/**
 * rhizo's `DELETE ...?data_only=1`: the resource stays, its data goes (a file's revisions, a
 * sequence's values and archives). Blob content is removed after the commit: a failure there leaves
 * an unreferenced blob, never a row naming a missing one.
 */
export async function clearData(services: Services, actor: Actor, r: ResourceInfo): Promise<void> {
  const { store, blobs } = services;
  const keys = await store.transaction(async (tx) => {
    let found: Array<string | null> = [];
    if (r.type === 'file') {
      found = (await tx.selectFrom('resource_revisions').select('blob_key').where('resource_id', '=', r.id).execute()).map((row) => row.blob_key);
      await tx.deleteFrom('resource_revisions').where('resource_id', '=', r.id).execute();
      const { size: _size, sha256: _sha256, ...attributes } = r.systemAttributes;
      await tx.updateTable('resources').set({ last_revision_id: null, system_attributes: JSON.stringify(attributes) }).where('id', '=', r.id).execute();
    } else if (r.type === 'sequence') {
      found = (await tx.selectFrom('sequence_values').select('blob_key').where('sequence_id', '=', r.id).execute()).map((row) => row.blob_key);
      await tx.deleteFrom('sequence_values').where('sequence_id', '=', r.id).execute();
      await tx.deleteFrom('rrd_rows').where('sequence_id', '=', r.id).execute();
      await tx
        .updateTable('sequences')
        .set({ last_stored_t: null, last_t: null, last_num: null, last_text: null, last_blob_key: null, rrd_state: null, revision: sql`revision + 1` })
        .where('resource_id', '=', r.id)
        .execute();
    }
    await recordAudit(tx, actor, { orgId: r.orgId, action: 'resource.clear', target: { type: 'resource', id: r.id }, details: { path: r.path } });
    return found.filter((key): key is string => key !== null);
  });
  await Promise.allSettled(keys.map((key) => blobs.delete(key)));
}
