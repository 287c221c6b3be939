import { CompiledQuery } from 'kysely';
import type { Db, Store } from '../../store/store.ts';

/** Kept well below SQLite's 32766 and PostgreSQL's 65535 bound parameters per statement. */
const maxParameters = 30_000;
const maxRowsPerStatement = 512;

/**
 * Statement sizes for `count` rows: full statements, then the rest in falling powers of two, so that
 * only a few distinct statement texts exist (SQLite keeps them prepared).
 */
function statementSizes(count: number, largest: number): number[] {
  const sizes: number[] = [];
  let left = count;
  for (let size = largest; left > 0; size = Math.max(1, size >> 1)) {
    while (left >= size) {
      sizes.push(size);
      left -= size;
    }
  }
  return sizes;
}

/**
 * Inserts `rows` (values in the order of `columns`) with as few statements as the parameter limits
 * allow, replacing the other columns of rows that exist with the same `key`. Built by hand: the query
 * builder's cost per value is what bulk ingest cannot afford.
 */
export async function upsertRows(db: Db, kind: Store['kind'], table: string, columns: readonly string[], key: readonly string[], rows: unknown[][]): Promise<void> {
  if (rows.length === 0) return;
  const largest = 2 ** Math.floor(Math.log2(Math.min(maxRowsPerStatement, Math.floor(maxParameters / columns.length))));
  const updates = columns.filter((c) => !key.includes(c)).map((c) => `${c} = excluded.${c}`);
  const suffix = ` on conflict (${key.join(', ')}) do ${updates.length ? `update set ${updates.join(', ')}` : 'nothing'}`;
  const head = `insert into ${table} (${columns.join(', ')}) values `;
  let offset = 0;
  for (const size of statementSizes(rows.length, largest)) {
    const chunk = rows.slice(offset, offset + size);
    offset += size;
    let n = 0;
    const tuples = chunk.map(() => `(${columns.map(() => (kind === 'postgres' ? `$${++n}` : '?')).join(', ')})`);
    await db.executeQuery(CompiledQuery.raw(head + tuples.join(', ') + suffix, chunk.flat()));
  }
}

/**
 * Sets `columns` of the rows whose `key` column matches, one tuple `[key, ...columns]` per row, in as
 * few statements as `upsertRows`. `types` are the PostgreSQL types of key and columns, which a
 * VALUES list needs there.
 */
export async function updateRows(db: Db, kind: Store['kind'], table: string, key: string, columns: readonly string[], types: readonly string[], rows: unknown[][]): Promise<void> {
  if (rows.length === 0) return;
  const width = columns.length + 1;
  const largest = 2 ** Math.floor(Math.log2(Math.min(maxRowsPerStatement, Math.floor(maxParameters / width))));
  // SQLite names the columns of a VALUES list column1, column2, ...; PostgreSQL takes names.
  const names = kind === 'postgres' ? [key, ...columns] : Array.from({ length: width }, (_, i) => `column${i + 1}`);
  const alias = kind === 'postgres' ? `u(${names.join(', ')})` : 'u';
  const assignments = columns.map((c, i) => `${c} = u.${names[i + 1]}`).join(', ');
  let offset = 0;
  for (const size of statementSizes(rows.length, largest)) {
    const chunk = rows.slice(offset, offset + size);
    offset += size;
    let n = 0;
    const tuples = chunk.map(() => `(${types.map((type) => (kind === 'postgres' ? `$${++n}::${type}` : '?')).join(', ')})`);
    const text = `update ${table} set ${assignments} from (values ${tuples.join(', ')}) as ${alias} where ${table}.${key} = u.${names[0]}`;
    await db.executeQuery(CompiledQuery.raw(text, chunk.flat()));
  }
}
