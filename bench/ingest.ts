// Ingest benchmark: numeric points per second acknowledged by fleetd, against raw inserts of the same
// rows into the same database, in the same run; then the latency of a consolidated one-year query.
//
// A data logger with 100 sequences (one device folder, /default/bench-logger/s000..s099) uploads its
// readings as devices do: each request is one POST /api/series/bulk carrying a value of every
// sequence at one time, answered once committed. `window` requests are in flight at once; the
// logger's clock moves 10 s per request. fleetd runs as shipped (`bin/fleetd.js serve`), on SQLite
// in a temporary folder and on a fresh PostgreSQL database.
//
// Baselines, in this process: better-sqlite3 inserting the same rows (same table shape and key,
// fleetd's pragmas) with one transaction per request's 100 rows; pg with one multi-row INSERT of
// 100 rows per statement, `window` at once. Target: fleetd acknowledges at least half the points/s.
//
// The one-year query reads a sequence holding a year of hourly values (written first, through the
// API) consolidated by day; its baseline is the same daily averages computed by SQL over the raw
// values in SQLite, which is what a server without archives does.
//
// BENCH_POSTGRES: admin URL of PostgreSQL (postgres://postgres@127.0.0.1:5432/postgres); the
// PostgreSQL targets are skipped, with a note, when it is unreachable.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { benchAdmin, type Benchmark, callApi, type Child, cpuSeconds, makeTempDir, removeTempDir, type Settings, startFleetdNode, table } from './support.ts';

const target = 0.5;
const sequenceCount = 100;
/** Requests in flight at once, for fleetd and the baselines alike. */
const window = 4;
const clockStepMs = 10_000;
const yearHours = 365 * 24;
const queryRuns = 100;
const postgresAdminUrl = process.env.BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export const benchmark: Benchmark = {
  name: 'ingest',
  description: `${sequenceCount} numeric sequences written ${sequenceCount} values per request through fleetd (SQLite, PostgreSQL) vs raw inserts, and a consolidated one-year query`,
  // Four targets of warm-up and measurement, plus a year of hourly values written twice and start-up.
  timeLimitMs: (s) => (4 * (s.warmup + s.duration) + 600) * 1000,
  run,
};

interface Throughput {
  points: number;
  seconds: number;
  serverCpu?: number;
}

/** Runs `send` `window` at a time for `seconds`; returns the points it acknowledged. */
async function drive(seconds: number, send: () => Promise<number>): Promise<Throughput> {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let points = 0;
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (performance.now() < deadline) {
        const acknowledged = await send();
        points += acknowledged;
      }
    }),
  );
  return { points, seconds: (performance.now() - started) / 1000 };
}

/** The rows of one request: a value of every sequence at time t. */
function readings(t: number): number[] {
  return Array.from({ length: sequenceCount }, (_, i) => 20 + i / 10 + Math.sin(t / 3_600_000 + i));
}

const sequenceName = (i: number) => `s${String(i).padStart(3, '0')}`;

interface Fleetd {
  base: string;
  token: string;
  child: Child;
  data: string;
  close(): Promise<void>;
}

/** A fleetd node on `database` (empty: SQLite in its folder), with an admin and the logger's folder of sequences. */
async function startFleetd(name: string, database: string | undefined, settings: Settings): Promise<Fleetd> {
  const data = makeTempDir('fleetd-bench-ingest-');
  const common = ['--data', data, '--log-level', 'warn', ...(database ? ['--database', database] : [])];
  const { child, base } = await startFleetdNode(name, data, common, [], settings);
  const token = (await callApi<{ accessToken: string }>(base, 'POST', '/api/auth/login', { body: benchAdmin })).accessToken;
  await callApi(base, 'POST', '/api/orgs/default/devices', { token, body: { name: 'bench-logger' } });
  for (let i = 0; i < sequenceCount; i++) {
    await callApi(base, 'POST', '/api/resources/default/bench-logger', { token, body: { name: sequenceName(i), type: 'sequence', sequence: { dataType: 'numeric' } } });
  }
  return {
    base,
    token,
    child,
    data,
    async close() {
      await child.stop();
      removeTempDir(data);
    },
  };
}

/** The logger uploading to fleetd: each call sends one request and resolves with the points acknowledged. */
function fleetdLogger(fleetd: Fleetd, clock: { t: number }): () => Promise<number> {
  const paths = Array.from({ length: sequenceCount }, (_, i) => `/default/bench-logger/${sequenceName(i)}`);
  return async () => {
    const t = (clock.t += clockStepMs);
    const values = readings(t);
    const body = JSON.stringify({ timestamp: t, values: Object.fromEntries(paths.map((p, i) => [p, values[i]])) });
    const response = await fetch(`${fleetd.base}/api/series/bulk`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${fleetd.token}` }, body });
    const text = await response.text();
    if (!response.ok) throw new Error(`POST /api/series/bulk answered ${response.status}: ${text.slice(0, 300)}`);
    const { results } = JSON.parse(text) as { results: Record<string, { stored?: boolean; error?: unknown }> };
    let acknowledged = 0;
    for (const result of Object.values(results)) {
      if (result.stored !== true) throw new Error(`a value was not stored: ${JSON.stringify(result)}`);
      acknowledged++;
    }
    return acknowledged;
  };
}

/** Raw better-sqlite3: the same rows, one transaction per request's worth, with fleetd's pragmas. */
function sqliteBaseline(dir: string): { send: () => Promise<number>; database: SqliteDatabase.Database } {
  const database = new SqliteDatabase(join(dir, 'baseline.db'));
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.exec('create table sequence_values (sequence_id text not null, t integer not null, num real, primary key (sequence_id, t))');
  const insert = database.prepare('insert into sequence_values (sequence_id, t, num) values (?, ?, ?)');
  const ids = Array.from({ length: sequenceCount }, (_, i) => `res_${sequenceName(i)}`);
  const clock = { t: Date.now() - 365 * 86_400_000 };
  const writeRequest = database.transaction((t: number, values: number[]) => {
    for (let i = 0; i < sequenceCount; i++) insert.run(ids[i], t, values[i]);
  });
  return {
    database,
    // Synchronous: the other callers of the window wait their turn, as SQLite's one writer makes them.
    send: async () => {
      const t = (clock.t += clockStepMs);
      writeRequest(t, readings(t));
      await Promise.resolve();
      return sequenceCount;
    },
  };
}

/** Raw pg: one multi-row INSERT per request's 100 rows. */
async function postgresBaseline(url: string): Promise<{ send: () => Promise<number>; close: () => Promise<void> }> {
  const pool = new pg.Pool({ connectionString: url, max: window });
  await pool.query('create table sequence_values (sequence_id text not null, t bigint not null, num double precision, primary key (sequence_id, t))');
  const ids = Array.from({ length: sequenceCount }, (_, i) => `res_${sequenceName(i)}`);
  const placeholders = ids.map((_, i) => `($${3 * i + 1}, $${3 * i + 2}, $${3 * i + 3})`).join(', ');
  const statement = `insert into sequence_values (sequence_id, t, num) values ${placeholders}`;
  const clock = { t: Date.now() - 365 * 86_400_000 };
  return {
    send: async () => {
      const t = (clock.t += clockStepMs);
      const values = readings(t);
      await pool.query(statement, ids.flatMap((id, i) => [id, t, values[i]]));
      return sequenceCount;
    },
    close: () => pool.end(),
  };
}

interface PostgresDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh database on the PostgreSQL of this machine, or undefined (with why) when it is unreachable. */
async function createPostgresDatabase(): Promise<PostgresDatabase | string> {
  const admin = new pg.Client({ connectionString: postgresAdminUrl, connectionTimeoutMillis: 3000 });
  try {
    await admin.connect();
  } catch (error) {
    return `PostgreSQL unreachable at ${postgresAdminUrl} (${(error as Error).message})`;
  }
  const name = `fleetd_bench_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: postgresAdminUrl });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}

const rate = (r: Throughput) => r.points / r.seconds;
const format = (n: number) => Math.round(n).toLocaleString('en-US');

/** Warm-up, then the measured seconds in interleaved rounds: each target gets the same share of the machine's moods. */
async function compare(targets: Array<{ name: string; send: () => Promise<number>; pid?: () => number | undefined }>, settings: Settings, log: (line: string) => void): Promise<Throughput[]> {
  for (const t of targets) await drive(settings.warmup, t.send);
  const totals: Throughput[] = targets.map(() => ({ points: 0, seconds: 0, serverCpu: 0 }));
  for (let round = 0; round < settings.rounds; round++) {
    for (const [i, t] of targets.entries()) {
      const cpuBefore = t.pid ? cpuSeconds(t.pid()) : undefined;
      const result = await drive(settings.duration / settings.rounds, t.send);
      const cpuAfter = t.pid ? cpuSeconds(t.pid()) : undefined;
      totals[i]!.points += result.points;
      totals[i]!.seconds += result.seconds;
      const cpu = cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined;
      if (cpu !== undefined && totals[i]!.serverCpu !== undefined) totals[i]!.serverCpu += cpu;
      else totals[i]!.serverCpu = undefined;
      // The CPU per point of each round shows how steady a figure is on a shared machine.
      log(`  round ${round + 1} ${t.name}: ${format(rate(result))} points/s${cpu === undefined ? '' : `, ${cpuPerPoint({ ...result, serverCpu: cpu })} CPU/point`}`);
    }
  }
  return totals;
}

/** A year of hourly values in one sequence, written in order through the API (one request per hour of data). */
async function writeYear(fleetd: Fleetd): Promise<string> {
  const path = '/default/bench-logger/year';
  await callApi(fleetd.base, 'POST', '/api/resources/default/bench-logger', {
    token: fleetd.token,
    body: {
      name: 'year',
      type: 'sequence',
      // Hourly readings: a heartbeat of two hours keeps every primary point known.
      sequence: { dataType: 'numeric', rrd: ['--step', '3600', 'DS:value:GAUGE:7200:U:U', 'RRA:AVERAGE:0.5:1:8784', 'RRA:AVERAGE:0.5:24:732', 'RRA:MIN:0.5:24:732', 'RRA:MAX:0.5:24:732'] },
    },
  });
  const start = Math.floor(Date.now() / 3_600_000) * 3_600_000 - yearHours * 3_600_000;
  for (let h = 1; h <= yearHours; h++) {
    const t = start + h * 3_600_000;
    await callApi(fleetd.base, 'POST', '/api/series/bulk', { token: fleetd.token, body: { timestamp: t, values: { [path]: 15 + 10 * Math.sin((2 * Math.PI * h) / (365 * 24)) + Math.sin(h) } } });
  }
  return path;
}

/** Milliseconds of `runs` sequential calls: p50 and p99. */
async function latency(runs: number, call: () => Promise<void>): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await call();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(runs * 0.5)]!, p99: times[Math.min(runs - 1, Math.floor(runs * 0.99))]! };
}

async function run(settings: Settings): Promise<{ targetsMet: boolean }> {
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const cleanups: Array<() => Promise<void> | void> = [];
  try {
    const baselineDir = makeTempDir('fleetd-bench-ingest-baseline-');
    cleanups.push(() => removeTempDir(baselineDir));
    const rows: string[][] = [];
    let targetsMet = true;

    // ---- SQLite
    const sqliteFleetd = await startFleetd('fleetd-sqlite', undefined, settings);
    cleanups.push(() => sqliteFleetd.close());
    const sqliteRaw = sqliteBaseline(baselineDir);
    cleanups.push(() => void sqliteRaw.database.close());
    const [fleetdSqlite, rawSqlite] = await compare(
      [
        { name: 'fleetd on SQLite', send: fleetdLogger(sqliteFleetd, { t: Date.now() - 365 * 86_400_000 }), pid: () => sqliteFleetd.child.process.pid },
        { name: 'raw better-sqlite3', send: sqliteRaw.send, pid: () => process.pid },
      ],
      settings,
      log,
    );
    const sqliteRatio = rate(fleetdSqlite!) / rate(rawSqlite!);
    targetsMet &&= sqliteRatio >= target;
    rows.push(['raw better-sqlite3 (100 rows per transaction)', format(rate(rawSqlite!)), '', '']);
    rows.push(['fleetd on SQLite (POST /api/series/bulk)', format(rate(fleetdSqlite!)), cpuPerPoint(fleetdSqlite!), `${sqliteRatio.toFixed(2)} ${sqliteRatio >= target ? 'ok' : 'FAIL'}`]);

    // ---- PostgreSQL
    const postgres = await createPostgresDatabase();
    if (typeof postgres === 'string') {
      log(`note: PostgreSQL targets skipped: ${postgres}`);
    } else {
      cleanups.push(() => postgres.drop());
      const baselinePostgres = await createPostgresDatabase();
      if (typeof baselinePostgres === 'string') throw new Error(baselinePostgres);
      cleanups.push(() => baselinePostgres.drop());
      const postgresFleetd = await startFleetd('fleetd-postgres', postgres.url, settings);
      cleanups.push(() => postgresFleetd.close());
      const postgresRaw = await postgresBaseline(baselinePostgres.url);
      cleanups.push(() => postgresRaw.close());
      const [fleetdPostgres, rawPostgres] = await compare(
        [
          { name: 'fleetd on PostgreSQL', send: fleetdLogger(postgresFleetd, { t: Date.now() - 365 * 86_400_000 }), pid: () => postgresFleetd.child.process.pid },
          { name: 'raw pg multi-row inserts', send: postgresRaw.send },
        ],
        settings,
        log,
      );
      const postgresRatio = rate(fleetdPostgres!) / rate(rawPostgres!);
      targetsMet &&= postgresRatio >= target;
      rows.push(['raw pg (one 100-row INSERT per request)', format(rate(rawPostgres!)), '', '']);
      rows.push(['fleetd on PostgreSQL (POST /api/series/bulk)', format(rate(fleetdPostgres!)), cpuPerPoint(fleetdPostgres!), `${postgresRatio.toFixed(2)} ${postgresRatio >= target ? 'ok' : 'FAIL'}`]);
    }
    log(`\n${table(['target', 'points/s acknowledged', 'server CPU/point', 'ratio'], rows)}`);

    // ---- a consolidated one-year query
    log(`\nwriting a year of hourly values (${yearHours} requests)...`);
    const path = await writeYear(sqliteFleetd);
    const query = `/api/series/consolidated?path=${encodeURIComponent(path)}&start=${Date.now() - 365 * 86_400_000}&end=${Date.now()}&resolution=86400`;
    let points = 0;
    const fleetdQuery = await latency(queryRuns, async () => {
      const result = await callApi<{ points: unknown[] }>(sqliteFleetd.base, 'GET', query, { token: sqliteFleetd.token });
      points = result.points.length;
    });
    if (points < 360) throw new Error(`the one-year query gave ${points} points, not a year of days`);
    sqliteRaw.database.exec('create table year_values (t integer primary key, num real)');
    const rawQuery = sqliteRaw.database.prepare('select t / 86400000 as day, avg(num) as value from year_values where t between ? and ? group by day order by day');
    const insertYear = sqliteRaw.database.prepare('insert into year_values (t, num) values (?, ?)');
    const yearStart = Date.now() - yearHours * 3_600_000;
    sqliteRaw.database.transaction(() => {
      for (let h = 1; h <= yearHours; h++) insertYear.run(yearStart + h * 3_600_000, Math.sin(h));
    })();
    const baselineQuery = await latency(queryRuns, async () => {
      rawQuery.all(yearStart, Date.now());
    });
    log(
      `\n${table(
        ['one-year query, daily resolution', 'p50 ms', 'p99 ms'],
        [
          [`fleetd GET /api/series/consolidated (${points} points, over HTTP)`, fleetdQuery.p50.toFixed(2), fleetdQuery.p99.toFixed(2)],
          ['raw SQLite: daily averages by GROUP BY over the hourly values (in process)', baselineQuery.p50.toFixed(2), baselineQuery.p99.toFixed(2)],
        ],
      )}`,
    );
    return { targetsMet };
  } finally {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
  }
}

function cpuPerPoint(result: Throughput): string {
  return result.serverCpu === undefined ? '' : `${((result.serverCpu / result.points) * 1e6).toFixed(1)} µs`;
}
