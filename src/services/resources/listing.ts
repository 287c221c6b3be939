import { sql, type RawBuilder } from 'kysely';
import type { Principal } from '../../core/access.ts';
import { badRequest } from '../../core/errors.ts';
import { accessLevel, effectivePermissions, type PermissionEntry } from '../../core/resource-access.ts';
import { pathChain, resourceTypeCodes, type ResourceType } from '../../core/resource-paths.ts';
import { maxPageSize } from '../../store/page.ts';
import type { Db, Store } from '../../store/store.ts';
import { parsePermissions, type ResourceRow } from './resource-info.ts';
import { below } from './subtree.ts';

export interface ListOptions {
  /** The whole subtree instead of the folder's children. */
  recursive?: boolean;
  type?: ResourceType;
  /** Names matching this pattern, `*` standing for any text; case-insensitive. */
  filter?: string;
  limit?: number;
  cursor?: string;
}

const defaultPageSize = 50;

const encodeCursor = (path: string) => Buffer.from(path).toString('base64url');

function decodeCursor(cursor: string): string {
  const path = Buffer.from(cursor, 'base64url').toString();
  if (!path.startsWith('/')) throw badRequest('cursor is not one this server gave out');
  return path;
}

/** Paths compared byte by byte on both databases, whatever PostgreSQL's collation: the order a listing pages in. */
const pathOrder = (kind: Store['kind']): RawBuilder<string> => (kind === 'postgres' ? sql<string>`${sql.ref('path')} collate "C"` : sql<string>`${sql.ref('path')}`);

/** `*` becomes LIKE's `%`; LIKE's own wildcards and escape character in the name are taken literally. */
const likePattern = (glob: string) => glob.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`).replaceAll('*', '%');

/** One page of a folder's children (or subtree), ordered by path; paging goes on from the last path given. */
export async function listRows(db: Db, kind: Store['kind'], folder: ResourceRow, options: ListOptions): Promise<{ rows: ResourceRow[]; nextCursor: string | null }> {
  const limit = Math.min(options.limit ?? defaultPageSize, maxPageSize);
  let query = db.selectFrom('resources').selectAll().where('org_id', '=', folder.org_id).where('deleted', '=', 0);
  query = options.recursive ? query.where(below(folder.path)) : query.where('parent_id', '=', folder.id);
  if (options.type) query = query.where('type', '=', resourceTypeCodes[options.type]);
  if (options.filter) query = query.where(sql<boolean>`lower(${sql.ref('name')}) like ${likePattern(options.filter)} escape '\\'`);
  if (options.cursor) query = query.where(sql<boolean>`${pathOrder(kind)} > ${decodeCursor(options.cursor)}`);
  const rows = await query.orderBy(pathOrder(kind)).limit(limit + 1).execute();
  const page = rows.slice(0, limit);
  return { rows: page, nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.path) : null };
}

/**
 * The rows the principal may read. Each row's entries merge its own with those of every folder
 * between it and the listed folder (read in one query) and the listed folder's chain.
 */
export async function readableRows(db: Db, principal: Principal | undefined, folderChain: readonly ResourceRow[], rows: ResourceRow[]): Promise<ResourceRow[]> {
  const orgId = folderChain[0]!.org_id;
  const known = new Map<string, PermissionEntry[] | null>([...folderChain, ...rows].map((row) => [row.path, parsePermissions(row.permissions)]));
  const missing = [...new Set(rows.flatMap((row) => pathChain(row.path)))].filter((path) => !known.has(path));
  for (let start = 0; start < missing.length; start += maxPageSize) {
    const between = await db
      .selectFrom('resources')
      .select(['path', 'permissions'])
      .where('org_id', '=', orgId)
      .where('deleted', '=', 0)
      .where('path', 'in', missing.slice(start, start + maxPageSize))
      .execute();
    for (const row of between) known.set(row.path, parsePermissions(row.permissions));
  }
  return rows.filter((row) => {
    const chain = pathChain(row.path).reverse().map((path) => known.get(path) ?? null);
    return accessLevel(principal, orgId, effectivePermissions(chain)) >= 10;
  });
}
