import { conflict } from '../../core/errors.ts';
import { isValidName, maxNameLength, withoutForbidden } from '../../core/resource-paths.ts';
import type { Db } from '../../store/store.ts';
import { insertIfFree, newResourceRow } from './insert.ts';
import { ensureOrgRoot } from './org-root.ts';
import type { ResourceRow } from './resource-info.ts';
import { deleteSubtree } from './subtree.ts';

/**
 * The names a device's folder may take, in order: the device's own name when it is a valid name,
 * then one made unique with the end of the device id (random, so a second clash is unheard of).
 */
function folderNames(device: { id: string; name: string }): string[] {
  const suffix = `-${device.id.slice(-8)}`;
  const base = withoutForbidden(device.name).slice(0, maxNameLength - suffix.length);
  const unique = `${base}${suffix}`;
  return isValidName(device.name) ? [device.name, unique] : [unique];
}

/**
 * Makes the folder (rhizo's controller folder) a device's data lives in, under the organization's
 * root; called in the transaction that inserts the device, so that no device is without one.
 */
export async function insertDeviceFolder(db: Db, device: { id: string; orgId: string; name: string }): Promise<string> {
  const root = await ensureOrgRoot(db, device.orgId);
  for (const name of folderNames(device)) {
    const row = newResourceRow({ orgId: device.orgId, parent: root, name, type: 'controller_folder', deviceId: device.id });
    if (await insertIfFree(db, row)) return row.id;
  }
  throw conflict(`No folder name is free for device ${device.id}`);
}

export const findDeviceFolder = (db: Db, deviceId: string): Promise<ResourceRow | undefined> =>
  db.selectFrom('resources').selectAll().where('device_id', '=', deviceId).where('deleted', '=', 0).orderBy('created_at').executeTakeFirst();

/** Soft-deletes a device's folder with everything in it; call before the device row goes. */
export async function deleteDeviceFolder(db: Db, deviceId: string): Promise<void> {
  const rows = await db.selectFrom('resources').select(['org_id', 'path']).where('device_id', '=', deviceId).where('deleted', '=', 0).execute();
  for (const row of rows) await deleteSubtree(db, row);
}
