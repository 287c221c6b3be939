import { sql, type RawBuilder } from 'kysely';
import { conflict } from '../../core/errors.ts';
import { childPath } from '../../core/resource-paths.ts';
import { nowIso } from '../../store/page.ts';
import { isUniqueViolation, type Db } from '../../store/store.ts';
import type { ResourceRow } from './resource-info.ts';

/** Characters as the databases count them (code points), not UTF-16 units as JavaScript does. */
const sqlLength = (text: string) => [...text].length;

/**
 * "The row lies below `relativePath`", comparing the path's beginning rather than with LIKE, whose
 * wildcards names may contain.
 */
export function below(relativePath: string): RawBuilder<boolean> {
  if (relativePath === '') return sql<boolean>`${sql.ref('path')} <> ''`;
  const prefix = `${relativePath}/`;
  return sql<boolean>`substr(${sql.ref('path')}, 1, ${sqlLength(prefix)}) = ${prefix}`;
}

/**
 * Renames and/or moves a resource, and its whole subtree with it: the descendants' paths change in
 * one statement. The caller checked that the new parent is not inside the resource.
 */
export async function moveSubtree(db: Db, row: ResourceRow, parent: { id: string; path: string }, name: string): Promise<string> {
  const path = childPath(parent.path, name);
  try {
    await db.updateTable('resources').set({ parent_id: parent.id, name, path, modified_at: nowIso() }).where('id', '=', row.id).execute();
  } catch (error) {
    if (isUniqueViolation(error)) throw conflict(`A resource named ${JSON.stringify(name)} exists already in that folder`);
    throw error;
  }
  await db
    .updateTable('resources')
    .set({ path: sql<string>`${path} || substr(${sql.ref('path')}, ${sqlLength(row.path) + 1})` })
    .where('org_id', '=', row.org_id)
    .where('deleted', '=', 0)
    .where(below(row.path))
    .execute();
  return path;
}

/** Soft-deletes a resource and everything below it: their names are free again, their data kept. */
export async function deleteSubtree(db: Db, row: Pick<ResourceRow, 'org_id' | 'path'>): Promise<void> {
  await db
    .updateTable('resources')
    .set({ deleted: 1, modified_at: nowIso() })
    .where('org_id', '=', row.org_id)
    .where('deleted', '=', 0)
    .where((eb) => eb.or([eb('path', '=', row.path), below(row.path)]))
    .execute();
}
