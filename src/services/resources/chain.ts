import { effectivePermissions, type PermissionEntry } from '../../core/resource-access.ts';
import { pathChain } from '../../core/resource-paths.ts';
import type { Db } from '../../store/store.ts';
import { ensureOrgRoot } from './org-root.ts';
import { parsePermissions, type ResourceRow } from './resource-info.ts';

/**
 * A resource's ancestors and itself, root first, read in one query: as far down the path as
 * resources exist, so the last row is the resource itself only when the chain is as long as its path.
 */
export async function chainOf(db: Db, orgId: string, relativePath: string): Promise<ResourceRow[]> {
  return (await chainsOf(db, orgId, [relativePath]))[0]!;
}

/** Most paths one query names: far below the parameter limits of SQLite and PostgreSQL. */
const pathsPerQuery = 500;

/**
 * The chains of several paths of one organization (as chainOf gives each), read together: the
 * ancestors they share are read once, in as few queries as the paths allow.
 */
export async function chainsOf(db: Db, orgId: string, relativePaths: readonly string[]): Promise<ResourceRow[][]> {
  const wanted = [...new Set(relativePaths.flatMap(pathChain))];
  const byPath = new Map<string, ResourceRow>();
  for (let i = 0; i < wanted.length; i += pathsPerQuery) {
    const rows = await db.selectFrom('resources').selectAll().where('org_id', '=', orgId).where('deleted', '=', 0).where('path', 'in', wanted.slice(i, i + pathsPerQuery)).execute();
    for (const row of rows) byPath.set(row.path, row);
  }
  if (!byPath.has('')) byPath.set('', await ensureOrgRoot(db, orgId));
  return relativePaths.map((relativePath) => {
    const chain: ResourceRow[] = [];
    for (const path of pathChain(relativePath)) {
      const row = byPath.get(path);
      if (!row) break;
      chain.push(row);
    }
    return chain;
  });
}

/** The permission entries in effect on the last resource of a chain. */
export const permissionsOfChain = (chain: readonly ResourceRow[]): PermissionEntry[] =>
  effectivePermissions(chain.map((row) => parsePermissions(row.permissions)).reverse());

const isRrdList = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string');

/**
 * The archive definition a new sequence below these folders inherits: the `rrd` system attribute
 * (rrdtool strings) of the nearest folder that has one, so a folder sets defaults for its subtree.
 */
export function inheritedRrd(chain: readonly ResourceRow[]): string[] | undefined {
  for (const row of [...chain].reverse()) {
    const rrd = (JSON.parse(row.system_attributes) as Record<string, unknown>).rrd;
    if (isRrdList(rrd)) return rrd;
  }
  return undefined;
}
