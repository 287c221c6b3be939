import { Worker } from 'node:worker_threads';
import type SqliteDatabase from 'better-sqlite3';
import type { Logger } from '../log.ts';

export interface CheckpointSettings {
  /** How often the thread copies new log pages into the database file. */
  intervalMs: number;
  /** Log length (pages) from which the thread starts the log over after its copy. */
  restartPages: number;
  /** How long a restart waits for the connection's transaction and readers before trying again later. */
  restartWaitMs: number;
}

const defaults: CheckpointSettings = { intervalMs: 50, restartPages: 4096, restartWaitMs: 100 };

/** SQLite's own threshold, which the connection goes back to when the thread is gone. */
const sqliteAutocheckpointPages = 1000;

/**
 * Checkpoints of a SQLite database's write-ahead log on a thread of their own. By default SQLite
 * checkpoints in the commit that takes the log past 1000 pages: the server's one connection then
 * copies those pages into the database file on the event loop, which took about a third of the
 * time of an ingest batch. Here the connection only appends to the log, and the thread copies.
 *
 * The connection keeps a checkpoint of its own for a log many times longer than the thread lets it
 * grow, should the thread fall behind; if the thread dies, the connection checkpoints as SQLite does
 * by default again. Transactions must take the write lock as they begin (`begin immediate`): a
 * transaction that read first and then writes while a restart holds the lock would fail at once
 * instead of waiting.
 */
export class SqliteCheckpoints {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  #stopped = false;

  constructor(database: SqliteDatabase.Database, path: string, logger: Logger, settings: Partial<CheckpointSettings> = {}) {
    const { intervalMs, restartPages, restartWaitMs } = { ...defaults, ...settings };
    database.pragma(`wal_autocheckpoint = ${restartPages * 8}`);
    // A restarted log is cut back to this size instead of keeping its longest length on disk.
    database.pragma(`journal_size_limit = ${restartPages * (database.pragma('page_size', { simple: true }) as number)}`);
    this.#worker = new Worker(new URL('./sqlite-checkpoint-worker.js', import.meta.url), { workerData: { path, intervalMs, restartPages, restartWaitMs } });
    this.#worker.on('error', (error) => logger.error({ err: error }, 'the SQLite checkpoint thread failed; the connection checkpoints itself from now on'));
    this.#exited = new Promise((resolve) =>
      this.#worker.once('exit', () => {
        if (!this.#stopped && database.open) database.pragma(`wal_autocheckpoint = ${sqliteAutocheckpointPages}`);
        resolve();
      }),
    );
    // A process that ends without closing its store is not held up by the thread; SQLite's checkpoints survive being cut off.
    this.#worker.unref();
  }

  /** Ends the thread; resolves once it has closed its connection. */
  async stop(): Promise<void> {
    this.#stopped = true;
    // Waited for, the thread must keep the process up until it is done.
    this.#worker.ref();
    this.#worker.postMessage('stop');
    await this.#exited;
  }
}
