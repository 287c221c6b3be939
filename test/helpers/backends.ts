import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * The databases every store-backed test runs against. SQLite always; PostgreSQL on this machine
 * (FLEETD_TEST_POSTGRES, default postgres://127.0.0.1:5432/postgres) in a fresh database per test
 * file, dropped afterwards. In CI an unreachable PostgreSQL fails the run; elsewhere its tests skip
 * with a message naming the service.
 */
export interface Backend {
  name: 'sqlite' | 'postgres';
  /** Why the backend's tests are skipped here, or undefined when they run. */
  skip?: string;
  /** Creates an empty database. */
  create(): Promise<TestDatabase>;
}

export interface TestDatabase {
  url: string;
  /** Removes the database and everything in it. */
  drop(): Promise<void>;
}

export const postgresAdminUrl = process.env.FLEETD_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const postgresHint = `PostgreSQL is not reachable at ${postgresAdminUrl}; start it (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set FLEETD_TEST_POSTGRES`;

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: postgresAdminUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

const sqliteBackend: Backend = {
  name: 'sqlite',
  async create() {
    const dir = mkdtempSync(join(tmpdir(), 'fleetd-test-'));
    return { url: `sqlite:${join(dir, 'fleetd.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  },
};

async function postgresAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: postgresAdminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function postgresBackend(skip: string | undefined): Backend {
  return {
    name: 'postgres',
    skip,
    async create() {
      const name = `fleetd_test_${randomBytes(6).toString('hex')}`;
      await postgresAdmin((c) => c.query(`create database ${name}`));
      const url = new URL(postgresAdminUrl);
      url.pathname = `/${name}`;
      return { url: url.toString(), drop: () => postgresAdmin(async (c) => void (await c.query(`drop database if exists ${name} with (force)`))) };
    },
  };
}

let cached: Promise<Backend[]> | undefined;

export function backends(): Promise<Backend[]> {
  cached ??= (async () => {
    const reachable = await postgresReachable();
    if (!reachable && process.env.CI) throw new Error(`${postgresHint} (CI=true: PostgreSQL tests may not be skipped)`);
    return [sqliteBackend, postgresBackend(reachable ? undefined : postgresHint)];
  })();
  return cached;
}
