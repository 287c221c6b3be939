// @ts-check
// The thread that checkpoints a SQLite database's write-ahead log for the server's connection
// (sqlite-checkpoints.ts). Plain JavaScript: a worker thread does not get the tsx loader that runs
// fleetd's TypeScript on the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';

/** @type {{ path: string; intervalMs: number; restartPages: number; restartWaitMs: number }} */
const { path, intervalMs, restartPages, restartWaitMs } = workerData;
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

const database = new SqliteDatabase(path);
// How long a restart waits for the server's write transaction and its readers to end.
database.pragma(`busy_timeout = ${restartWaitMs}`);

/**
 * Copies the log's new pages into the database file without holding anyone up. Once the log is
 * long, a restart makes the next commit write from the log's start again: it holds the server's
 * writes back while it copies what came since the copy just made, which is little.
 */
function checkpoint() {
  const [{ log }] = /** @type {Array<{ log: number }>} */ (database.pragma('wal_checkpoint(PASSIVE)'));
  if (log >= restartPages) database.pragma('wal_checkpoint(RESTART)');
}

const timer = setInterval(checkpoint, intervalMs);

port.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  database.close();
  port.close();
});
