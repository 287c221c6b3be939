import { CompiledQuery, type Transaction } from 'kysely';
import type { Database } from '../../store/schema.ts';
import type { Store } from '../../store/store.ts';

/** Kept well below SQLite's 32766 and PostgreSQL's 65535 bound parameters per statement. */
const maxParameters = 30_000;
const maxRowsPerStatement = 512;

/**
 * Statement sizes for `count` rows: full statements, then the rest in falling powers of two, so that
 * only a few distinct statement texts exist.
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
 * Runs a statement of `width` parameters per row for all `rows`: on SQLite once per row (prepared
 * once, its cheapest way), on PostgreSQL with as many rows per statement as the parameter limits
 * allow (`text(size)` gives the statement for `size` rows).
 */
async function runRows(store: Store, tx: Transaction<Database>, width: number, rows: unknown[][], text: (size: number) => string): Promise<void> {
  if (rows.length === 0) return;
  if (store.kind === 'sqlite') return store.runEach(tx, text(1), rows);
  const largest = 2 ** Math.floor(Math.log2(Math.min(maxRowsPerStatement, Math.floor(maxParameters / width))));
  let offset = 0;
  for (const size of statementSizes(rows.length, largest)) {
    const chunk = rows.slice(offset, offset + size);
    offset += size;
    await tx.executeQuery(CompiledQuery.raw(text(size), chunk.flat()));
  }
}

/** `size` tuples of PostgreSQL parameters, typed with `types` when given (a VALUES list needs it), else `width` of them. */
function tuples(size: number, width: number, types?: readonly string[]): string {
  let n = 0;
  const tuple = () => `(${Array.from({ length: width }, (_, i) => `$${++n}${types ? `::${types[i]}` : ''}`).join(', ')})`;
  return Array.from({ length: size }, tuple).join(', ');
}

/**
 * Inserts `rows` (values in the order of `columns`), replacing the other columns of rows that exist
 * with the same `key`. Built by hand: the query builder's cost per value is what bulk ingest cannot
 * afford.
 */
export async function upsertRows(store: Store, tx: Transaction<Database>, table: string, columns: readonly string[], key: readonly string[], rows: unknown[][]): Promise<void> {
  const updates = columns.filter((c) => !key.includes(c)).map((c) => `${c} = excluded.${c}`);
  const suffix = ` on conflict (${key.join(', ')}) do ${updates.length ? `update set ${updates.join(', ')}` : 'nothing'}`;
  const head = `insert into ${table} (${columns.join(', ')}) values `;
  const sqliteText = head + `(${columns.map(() => '?').join(', ')})` + suffix;
  await runRows(store, tx, columns.length, rows, (size) => (store.kind === 'sqlite' ? sqliteText : head + tuples(size, columns.length) + suffix));
}

/**
 * Sets `columns` of the rows whose `key` column matches, one tuple `[...columns, key]` per row.
 * `types` are the PostgreSQL types of the columns and the key, which a VALUES list needs there.
 */
export async function updateRows(store: Store, tx: Transaction<Database>, table: string, columns: readonly string[], key: string, types: readonly string[], rows: unknown[][]): Promise<void> {
  const width = columns.length + 1;
  if (store.kind === 'sqlite') return runRows(store, tx, width, rows, () => `update ${table} set ${columns.map((c) => `${c} = ?`).join(', ')} where ${key} = ?`);
  const assignments = columns.map((c) => `${c} = u.${c}`).join(', ');
  await runRows(store, tx, width, rows, (size) => `update ${table} set ${assignments} from (values ${tuples(size, width, types)}) as u(${[...columns, key].join(', ')}) where ${table}.${key} = u.${key}`);
}
