import type { Db } from '../store/store.ts';

/** Attempts before giving up when other writers keep changing the same attributes. */
const maxAttempts = 10;

/**
 * Changes the system attributes of a resource by compare-and-swap: `change` gets the stored
 * attributes and returns the new ones (undefined: nothing to change), and the write only lands if
 * nobody changed them meanwhile, else it is tried again on what they wrote. This is bookkeeping
 * (connects, watchdogs) rather than a user's edit, so it goes round ResourceTree.update: no audit
 * entry, no modification time. Returns true when this call wrote the change, which makes it a
 * cluster-wide "only one node does it" when `change` depends on what it reads.
 */
export async function changeSystemAttributes(
  db: Db,
  resourceId: string,
  change: (current: Record<string, unknown>) => Record<string, unknown> | undefined,
): Promise<boolean> {
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const row = await db.selectFrom('resources').select('system_attributes').where('id', '=', resourceId).where('deleted', '=', 0).executeTakeFirst();
    if (!row) return false;
    const next = change(parseAttributes(row.system_attributes));
    if (next === undefined) return false;
    const written = await db
      .updateTable('resources')
      .set({ system_attributes: JSON.stringify(next) })
      .where('id', '=', resourceId)
      .where('system_attributes', '=', row.system_attributes)
      .executeTakeFirst();
    if (Number(written.numUpdatedRows) === 1) return true;
  }
  return false;
}

export function parseAttributes(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
