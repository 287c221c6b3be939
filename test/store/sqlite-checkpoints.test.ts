import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { SqliteCheckpoints } from '../../src/store/sqlite-checkpoints.ts';
import { recordingLogger } from '../helpers/logger.ts';
import { readUntil } from '../helpers/waiting.ts';

/** The write-ahead log of a SQLite file copied into the database by a thread of its own, not by the commits. */

const pageSize = 4096;
const settings = { intervalMs: 5, restartPages: 64, restartWaitMs: 100 };

describe('SQLite checkpoints on their own thread', () => {
  let dir: string;
  let path: string;
  let database: SqliteDatabase.Database;
  let checkpoints: SqliteCheckpoints | undefined;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleetd-checkpoints-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function open(name: string): void {
    path = join(dir, name);
    database = new SqliteDatabase(path);
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = NORMAL');
    database.pragma('busy_timeout = 5000');
    database.exec('create table chunks (id integer primary key, data blob not null)');
  }

  afterEach(async () => {
    await checkpoints?.stop();
    checkpoints = undefined;
    if (database.open) database.close();
  });

  /** One transaction of `pages` pages of fresh data, taking the write lock as fleetd's transactions do. */
  function write(pages: number): void {
    const insert = database.prepare('insert into chunks (data) values (?)');
    database.exec('begin immediate');
    for (let i = 0; i < pages; i++) insert.run(randomBytes(pageSize - 100));
    database.exec('commit');
  }

  const size = (file: string) => (existsSync(file) ? statSync(file).size : 0);

  it('copies the log into the database file while the connection only appends, and starts the log over', async () => {
    open('copies.db');
    const { logger } = recordingLogger();
    checkpoints = new SqliteCheckpoints(database, path, logger, settings);
    // The connection's own checkpoint waits for a log many times longer than the thread lets it grow.
    assert.equal(database.pragma('wal_autocheckpoint', { simple: true }), settings.restartPages * 8);
    const databaseBefore = size(path);
    write(200);
    await readUntil(() => size(path), (bytes) => bytes >= databaseBefore + 200 * pageSize);
    // The log starts over on the first commit after the thread's restart, and is cut back.
    await readUntil(
      () => {
        write(1);
        return size(`${path}-wal`);
      },
      (bytes) => bytes <= settings.restartPages * pageSize,
    );
  });

  it('keeps the log bounded and every transaction whole under steady writes', async () => {
    open('steady.db');
    const { logger, entries } = recordingLogger();
    checkpoints = new SqliteCheckpoints(database, path, logger, settings);
    // Once the thread runs, which the first copy into the database file shows.
    const databaseBefore = size(path);
    write(4);
    await readUntil(() => size(path), (bytes) => bytes > databaseBefore);
    let largestLog = 0;
    for (let i = 0; i < 300; i++) {
      write(4);
      largestLog = Math.max(largestLog, size(`${path}-wal`));
      // Time for the thread between transactions, as a server's requests leave it.
      if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    assert.equal((database.prepare('select count(*) as n from chunks').get() as { n: number }).n, 1204);
    // Below the connection's own checkpoint (8 × restartPages): the thread kept the log short.
    assert.ok(largestLog < 8 * settings.restartPages * pageSize, `the log reached ${largestLog / pageSize} pages`);
    assert.deepEqual(entries.filter((e) => (e.level as number) >= 50), []);
  });

  it('leaves no log behind once the thread and then the connection are closed', async () => {
    open('closed.db');
    checkpoints = new SqliteCheckpoints(database, path, recordingLogger().logger, settings);
    write(20);
    await checkpoints.stop();
    checkpoints = undefined;
    database.close();
    assert.equal(existsSync(`${path}-wal`), false);
    const reopened = new SqliteDatabase(path);
    assert.equal((reopened.prepare('select count(*) as n from chunks').get() as { n: number }).n, 20);
    reopened.close();
  });

  it('hands checkpoints back to the connection when the thread fails, and says so', async () => {
    open('failing.db');
    const { logger, entries } = recordingLogger();
    // The thread cannot open a file in a folder that does not exist.
    checkpoints = new SqliteCheckpoints(database, join(dir, 'missing', 'failing.db'), logger, settings);
    await readUntil(() => database.pragma('wal_autocheckpoint', { simple: true }), (pages) => pages === 1000);
    const failure = entries.find((e) => e.level === 50);
    assert.match(String(failure?.msg), /checkpoint thread failed/);
  });
});
