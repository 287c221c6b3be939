import { sql, type RawBuilder, type SelectQueryBuilder } from 'kysely';
import { badRequest } from '../core/errors.ts';

export interface PageRequest {
  limit?: number;
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
}

const defaultPageSize = 50;
export const maxPageSize = 500;

const encodeCursor = (id: string) => Buffer.from(id).toString('base64url');

function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString();
  if (!/^[a-z]+_[0-9a-z]+$/.test(id)) throw badRequest('cursor is not one this server gave out');
  return id;
}

/**
 * Keyset pagination on a time-ordered `id` column: stable while rows are added, and as fast
 * on the thousandth page as on the first.
 */
export async function paginate<DB, TB extends keyof DB, O extends { id: string }>(
  query: SelectQueryBuilder<DB, TB, O>,
  idColumn: string,
  page: PageRequest,
): Promise<Page<O>> {
  const limit = Math.min(page.limit ?? defaultPageSize, maxPageSize);
  // Kysely cannot type a column named at run time; the caller passes a column of `query`'s table.
  let q = query as unknown as SelectQueryBuilder<any, any, O>;
  if (page.cursor) q = q.where(idColumn, '>', decodeCursor(page.cursor));
  const rows = await q.orderBy(idColumn).limit(limit + 1).execute();
  const items = rows.slice(0, limit);
  return { items, nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1]!.id) : null };
}

export const nowIso = (now = Date.now()) => new Date(now).toISOString();

/** Case-insensitive "column contains text", the same on SQLite and PostgreSQL. */
export function contains(column: string, text: string): RawBuilder<boolean> {
  const pattern = `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  return sql<boolean>`lower(${sql.ref(column)}) like ${pattern} escape '\\'`;
}

/**
 * Every page of a paged list, up to `max` items: for the adapters whose protocols answer lists whole
 * (rhizo, RDFM).
 */
export async function allPages<T>(fetch: (page: PageRequest) => Promise<Page<T>>, max = Number.POSITIVE_INFINITY): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await fetch({ limit: maxPageSize, cursor });
    items.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined && items.length < max);
  return items.slice(0, max);
}
