import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { CompiledQuery, Kysely, Migrator, PostgresDialect, sql, type Dialect, type MigrationProvider, type Transaction } from 'kysely';
import pg from 'pg';
import { FleetError } from '../core/errors.ts';
import type { Logger } from '../log.ts';
import { migrations } from './migrations/index.ts';
import { SqliteCheckpoints } from './sqlite-checkpoints.ts';
import { FleetSqliteDialect } from './sqlite-driver.ts';
import type { Database } from './schema.ts';

/** Either the database or a transaction on it: every query function takes one. */
export type Db = Kysely<Database> | Transaction<Database>;

type StoreKind = 'sqlite' | 'postgres';

/**
 * Persistence: one query layer (Kysely) over two implementations chosen by the database URL.
 * Whatever must be shared between fleetd nodes lives here.
 */
export interface Store {
  readonly kind: StoreKind;
  readonly db: Kysely<Database>;
  /** Runs `work` in one transaction: all of it is stored, or none. */
  transaction<T>(work: (tx: Transaction<Database>) => Promise<T>): Promise<T>;
  /**
   * Runs the statement `sql` once per row of parameters, in order, in the transaction `tx` of this
   * store. On SQLite they run straight on its one connection, which `tx` holds, prepared once: there
   * a statement per row costs less than one statement of many rows. Returns the rows they changed.
   */
  runEach(tx: Transaction<Database>, sql: string, rows: readonly unknown[][]): Promise<number>;
  /** Calls `listener` after each transaction of this store commits: what caches of stored state invalidate on. */
  onCommit(listener: () => void): void;
  /** Applies pending migrations; returns the names applied. */
  migrate(): Promise<string[]>;
  /** Names of the migrations that are not applied yet. */
  pendingMigrations(): Promise<string[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

function storeKind(url: string): StoreKind {
  if (url.startsWith('sqlite:')) return 'sqlite';
  if (/^postgres(ql)?:\/\//.test(url)) return 'postgres';
  throw new FleetError('validation_failed', `Unsupported database URL ${JSON.stringify(url)}: use sqlite:PATH or postgres://...`);
}

export interface StoreOptions {
  /**
   * SQLite in a file: checkpoint its write-ahead log on a thread of its own (sqlite-checkpoints.ts),
   * reporting a failure of that thread here. For a server; a short CLI command does without.
   */
  checkpointThread?: { logger: Logger };
}

function sqliteDialect(url: string, options: StoreOptions): { dialect: FleetSqliteDialect; checkpoints?: SqliteCheckpoints } {
  const path = url.slice('sqlite:'.length);
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const database = new SqliteDatabase(path);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  // Another process (the CLI beside a running server) or a checkpoint may hold the write lock for a moment.
  database.pragma('busy_timeout = 5000');
  const checkpoints = options.checkpointThread && path !== ':memory:' ? new SqliteCheckpoints(database, path, options.checkpointThread.logger) : undefined;
  return { dialect: new FleetSqliteDialect(database), checkpoints };
}

// bigint columns hold milliseconds since the epoch, far below 2^53: numbers, as SQLite gives them, not text.
pg.types.setTypeParser(pg.types.builtins.INT8, Number);

function postgresDialect(url: string): Dialect {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle client whose server went away emits an error; the pool replaces it on next use.
  pool.on('error', () => {});
  return new PostgresDialect({ pool });
}

const migrationProvider: MigrationProvider = { getMigrations: async () => migrations };

export function openStore(url: string, options: StoreOptions = {}): Store {
  const kind = storeKind(url);
  const { dialect: sqlite, checkpoints } = kind === 'sqlite' ? sqliteDialect(url, options) : { dialect: undefined, checkpoints: undefined };
  const db = new Kysely<Database>({ dialect: sqlite ?? postgresDialect(url) });
  const migrator = new Migrator({ db, provider: migrationProvider });
  const commitListeners: Array<() => void> = [];
  return {
    kind,
    db,
    async transaction(work) {
      const result = await db.transaction().execute(work);
      for (const listener of commitListeners) listener();
      return result;
    },
    async runEach(tx, text, rows) {
      if (sqlite) return sqlite.runEach(text, rows);
      let changed = 0;
      for (const row of rows) changed += Number((await tx.executeQuery(CompiledQuery.raw(text, row))).numAffectedRows ?? 0);
      return changed;
    },
    onCommit: (listener) => void commitListeners.push(listener),
    async migrate() {
      const { error, results } = await migrator.migrateToLatest();
      if (error) throw new FleetError('internal', `Migration failed: ${(error as Error).message}`, { cause: error });
      return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
    },
    async pendingMigrations() {
      return (await migrator.getMigrations()).filter((m) => m.executedAt === undefined).map((m) => m.name);
    },
    async ping() {
      await sql`select 1`.execute(db);
    },
    async close() {
      // The thread's connection goes first: the last one to close checkpoints the log and removes it.
      await checkpoints?.stop();
      await db.destroy();
    },
  };
}

/** True when `error` is the database refusing a duplicate of a unique column. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: string } | undefined)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
