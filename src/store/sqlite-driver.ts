import type SqliteDatabase from 'better-sqlite3';
import { CompiledQuery, SqliteDialect, type DatabaseConnection, type Driver, type QueryResult } from 'kysely';

const statementCacheSize = 500;

/**
 * The one better-sqlite3 connection, reusing prepared statements: Kysely prepares every query anew,
 * and on SQLite preparing costs about what running a small indexed query does. Only compiled
 * statements are kept (values are parameters), never results.
 */
class SqliteConnection implements DatabaseConnection {
  private readonly statements = new Map<string, SqliteDatabase.Statement>();

  constructor(private readonly database: SqliteDatabase.Database) {}

  async executeQuery<R>({ sql, parameters }: CompiledQuery): Promise<QueryResult<R>> {
    const statement = this.prepare(sql);
    if (statement.reader) return { rows: statement.all(parameters as unknown[]) as R[] };
    const { changes, lastInsertRowid } = statement.run(parameters as unknown[]);
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
  }

  /** Runs `sql` once per row of parameters (for many rows, cheaper on SQLite than one statement of all of them); returns the rows changed. */
  runEach(sql: string, rows: readonly unknown[][]): number {
    const statement = this.prepare(sql);
    let changed = 0;
    for (const row of rows) changed += statement.run(row).changes;
    return changed;
  }

  async *streamQuery(): AsyncIterableIterator<QueryResult<never>> {
    throw new Error('fleetd does not stream SQLite queries');
  }

  private prepare(sql: string): SqliteDatabase.Statement {
    const cached = this.statements.get(sql);
    if (cached) return cached;
    const statement = this.database.prepare(sql);
    if (this.statements.size >= statementCacheSize) this.statements.delete(this.statements.keys().next().value!);
    this.statements.set(sql, statement);
    return statement;
  }
}

/**
 * Kysely's SQLite driver, with a first-come-first-served lock on the single connection. Kysely's
 * own lock wakes every waiter on each release; under a few dozen concurrent requests those
 * wake-ups cost several times the queries themselves.
 */
class SqliteDriver implements Driver {
  readonly connection: SqliteConnection;
  private readonly waiting: Array<() => void> = [];
  /** Whether a query or transaction holds the connection. */
  held = false;

  constructor(private readonly database: SqliteDatabase.Database) {
    this.connection = new SqliteConnection(database);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    if (this.held) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.held = true;
    return this.connection;
  }

  async releaseConnection(): Promise<void> {
    const next = this.waiting.shift();
    // Handed straight to the next waiter, the connection is never seen free in between.
    if (next) next();
    else this.held = false;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    // The write lock from the start, waiting (busy_timeout) while another holds it: a transaction
    // that read first would be refused at once on its first write instead.
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async destroy(): Promise<void> {
    this.database.close();
  }
}

/** Kysely's SQLite dialect (its SQL and introspection) over fleetd's driver. */
export class FleetSqliteDialect extends SqliteDialect {
  readonly #driver: SqliteDriver;

  constructor(database: SqliteDatabase.Database) {
    super({ database });
    this.#driver = new SqliteDriver(database);
  }

  override createDriver(): Driver {
    return this.#driver;
  }

  /**
   * Runs `sql` once per row of parameters on the connection, which the caller's transaction holds
   * (so the statements are part of it), without a round through the query layer per row. Returns
   * the rows they changed.
   */
  runEach(sql: string, rows: readonly unknown[][]): number {
    if (!this.#driver.held) throw new Error('runEach needs the transaction that holds the connection');
    return this.#driver.connection.runEach(sql, rows);
  }
}
