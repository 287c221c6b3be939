import { sql } from 'kysely';
import { conflict } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { PermissionEntry } from '../../core/resource-access.ts';
import { childPath, resourceTypeCodes, type ResourceType } from '../../core/resource-paths.ts';
import { nowIso } from '../../store/page.ts';
import type { Db } from '../../store/store.ts';
import type { ResourceRow } from './resource-info.ts';

export interface NewResource {
  /** Given when content named after the resource is stored before its row. */
  id?: string;
  orgId: string;
  /** Null only for an organization's root folder. */
  parent: { id: string; path: string } | null;
  name: string;
  type: ResourceType;
  deviceId?: string | null;
  systemAttributes?: Record<string, unknown>;
  userAttributes?: Record<string, unknown>;
  permissions?: PermissionEntry[] | null;
}

export function newResourceRow(input: NewResource): ResourceRow {
  const now = nowIso();
  return {
    id: input.id ?? newId('res'),
    org_id: input.orgId,
    parent_id: input.parent?.id ?? null,
    name: input.name,
    path: input.parent ? childPath(input.parent.path, input.name) : '',
    type: resourceTypeCodes[input.type],
    device_id: input.deviceId ?? null,
    system_attributes: JSON.stringify(input.systemAttributes ?? {}),
    user_attributes: JSON.stringify(input.userAttributes ?? {}),
    permissions: input.permissions ? JSON.stringify(input.permissions) : null,
    last_revision_id: null,
    deleted: 0,
    created_at: now,
    modified_at: now,
  };
}

/**
 * Inserts the row unless a live resource has its path already; says whether it did. The database's
 * unique index decides, so concurrent writers cannot both win; and nothing fails, so a PostgreSQL
 * transaction around it stays usable.
 */
export async function insertIfFree(db: Db, row: ResourceRow): Promise<boolean> {
  const result = await db
    .insertInto('resources')
    .values(row)
    // The predicate of the partial index, as a literal: SQLite matches it textually, not a bound parameter.
    .onConflict((oc) => oc.columns(['org_id', 'path']).where('deleted', '=', sql.lit(0)).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

export async function insertResource(db: Db, row: ResourceRow): Promise<ResourceRow> {
  if (!(await insertIfFree(db, row))) throw conflict(`A resource named ${JSON.stringify(row.name)} exists already in that folder`);
  return row;
}
