import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { backends, type TestDatabase } from '../helpers/backends.ts';
import { freePort, killChildren, spawnFleetd, waitFor, type Spawned } from '../helpers/process.ts';
import { login, request } from '../helpers/server.ts';
import { TestClient } from '../adapters/rrduino/client.ts';
import { RhizoClient } from '../adapters/rhizo/client.ts';

/**
 * The time series from outside: `fleetd serve` in a child process, values written over HTTP and
 * the rrduino TCP protocol, read back over HTTP. A server killed with SIGKILL mid-ingest keeps every
 * value it acknowledged; the archives answer at several resolutions what this test computes itself.
 */

const email = 'admin@example.com';
const password = 'e2e-password-1';

after(() => killChildren());

interface Serving {
  serve: Spawned;
  base: string;
  rrduinoPort: number;
}

/** `fleetd serve` on the data and database of `settings`; the rrduino port is picked by the server and read from its log. */
async function startServe(cwd: string, settings: string[]): Promise<Serving> {
  const port = await freePort();
  const serve = spawnFleetd(['serve', '--host', '127.0.0.1', '--port', String(port), '--rrduino-host', '127.0.0.1', '--rrduino-port', '0', ...settings], { cwd });
  const servingLine = () => serve.stdout().split('\n').find((line) => line.includes('"msg":"fleetd is serving"'));
  await waitFor(
    () => serve.stderr().includes('fleetd is serving on') && servingLine() !== undefined,
    () => `exit ${serve.child.exitCode}: ${serve.stderr()}${serve.stdout().slice(-3000)}`,
  );
  const rrduinoPort = JSON.parse(servingLine()!).rrduinoPort as number;
  assert.ok(Number.isInteger(rrduinoPort) && rrduinoPort > 0 && rrduinoPort !== 60405, `rrduino port ${rrduinoPort}`);
  return { serve, base: `http://127.0.0.1:${port}`, rrduinoPort };
}

/** Log lines at error level or worse (pino: 50 error, 60 fatal). */
const errorLines = (stdout: string) => stdout.split('\n').filter((line) => /"level":(50|60)\b/.test(line));

/** Every stored value of a sequence, t → value. */
async function rawMap(base: string, token: string, path: string): Promise<Map<number, number>> {
  const reply = await request(base, 'GET', `/api/series/raw?path=${encodeURIComponent(path)}&limit=100000`, { token });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return new Map(reply.body.values.map((v: { t: number; value: number }) => [v.t, v.value]));
}

const close = (got: number | null, want: number | null) => (want === null ? got === null : got !== null && Math.abs(got - want) < 1e-6);

for (const backend of await backends()) {
  describe(`time series end to end [${backend.name}]`, { skip: backend.skip }, () => {
    let database: TestDatabase;
    let cwd: string;
    let settings: string[];
    let server: Serving;
    let token: string;

    const createResource = async (parent: string, body: Record<string, unknown>) => {
      const reply = await request(server.base, 'POST', `/api/resources${parent}`, { token, body });
      assert.equal(reply.status, 201, JSON.stringify(reply.body));
      return reply.body;
    };

    before(async () => {
      database = await backend.create();
      cwd = mkdtempSync(join(tmpdir(), 'fleetd-e2e-data-'));
      settings = ['--data', join(cwd, 'data'), '--database', database.url];
      const created = spawnFleetd(['admin', 'create', email, '--org', 'default', '--password-stdin', ...settings], { cwd, input: `${password}\n` });
      assert.equal((await created.exited).code, 0, created.stderr());
      server = await startServe(cwd, settings);
      token = (await login(server.base, email, password)).accessToken;
    });

    after(async () => {
      if (server && server.serve.child.exitCode === null && server.serve.child.signalCode === null) server.serve.child.kill('SIGTERM');
      await server?.serve.exited;
      await database?.drop();
      if (cwd) rmSync(cwd, { recursive: true, force: true });
    });

    it('a server killed with SIGKILL in the middle of ingest loses no acknowledged value', async (t) => {
      await createResource('/default', { name: 'rig', type: 'controller_folder' });
      const paths = ['a', 'b', 'c', 'd'].map((name) => `/default/rig/${name}`);
      for (const path of paths) await createResource('/default/rig', { name: path.split('/').pop(), type: 'sequence', sequence: { dataType: 'numeric', minStorageInterval: 0 } });

      interface Sent {
        path: string;
        t: number;
        value: number;
        acked: boolean;
      }
      const sent: Sent[] = [];
      const writers = 6;
      // Times a few minutes ago, distinct for every write of every writer: writer w writes at t0 + i·writers + w.
      const t0 = Date.now() - 600_000;
      let stop = false;
      let refused = 0;
      const writer = async (w: number) => {
        for (let i = 0; !stop; i++) {
          const t = t0 + i * writers + w;
          const value = (w * 1_000_000 + i) * 10;
          const viaBulk = i % 2 === 1;
          const batch: Sent[] = viaBulk
            ? paths.map((path, s) => ({ path, t, value: value + s + 0.5, acked: false }))
            : [{ path: paths[(w + i) % paths.length]!, t, value: value + 0.25, acked: false }];
          sent.push(...batch);
          try {
            if (viaBulk) {
              const reply = await request(server.base, 'POST', '/api/series/bulk', { token, body: { timestamp: t, values: Object.fromEntries(batch.map((b) => [b.path, b.value])) } });
              if (reply.status !== 200) {
                refused++;
                continue;
              }
              for (const b of batch) {
                assert.deepEqual(reply.body.results[b.path], { stored: true });
                b.acked = true;
              }
            } else {
              const [b] = batch;
              const reply = await request(server.base, 'POST', '/api/series/values', { token, body: { path: b!.path, value: b!.value, t } });
              if (reply.status !== 200) {
                refused++;
                continue;
              }
              assert.deepEqual(reply.body, { stored: true });
              b!.acked = true;
            }
          } catch (error) {
            if (error instanceof assert.AssertionError) throw error;
            // The connection died with the server: this write may or may not have been committed.
            return;
          }
        }
      };
      const running = Array.from({ length: writers }, (_, w) => writer(w));
      await sleep(1500);
      const acknowledgedBeforeKill = sent.filter((s) => s.acked).length;
      assert.ok(acknowledgedBeforeKill > 50, `only ${acknowledgedBeforeKill} values acknowledged in 1.5 s`);
      const killed = server.serve;
      killed.child.kill('SIGKILL');
      assert.equal((await killed.exited).signal, 'SIGKILL');
      stop = true;
      await Promise.all(running);
      assert.equal(refused, 0, 'no write was refused while the server ran');

      server = await startServe(cwd, settings);
      assert.doesNotMatch(server.serve.stderr(), /error|warn/i, 'starts without complaint');
      const ready = await request(server.base, 'GET', '/readyz');
      assert.equal(ready.status, 200, JSON.stringify(ready.body));

      const acked = sent.filter((s) => s.acked);
      const inFlight = sent.filter((s) => !s.acked);
      let recovered = 0;
      for (const path of paths) {
        const stored = await rawMap(server.base, token, path);
        for (const s of acked.filter((a) => a.path === path)) {
          assert.ok(stored.has(s.t), `${path}: the acknowledged value ${s.value} at ${s.t} is lost`);
          assert.equal(stored.get(s.t), s.value, `${path} at ${s.t}`);
        }
        // Nothing else appears: whatever is stored was sent, with its own value.
        const sentHere = new Map(sent.filter((s) => s.path === path).map((s) => [s.t, s.value]));
        for (const [time, value] of stored) {
          assert.equal(sentHere.get(time), value, `${path}: a value ${value} at ${time} that was never sent`);
          if (!acked.some((a) => a.path === path && a.t === time)) recovered++;
        }
      }
      t.diagnostic(`${acked.length} values acknowledged and kept; ${inFlight.length} in flight at the kill, ${recovered} of them stored`);
      assert.deepEqual(errorLines(server.serve.stdout()), []);

      // The restarted server takes values again, and its last value is the new one.
      const later = Date.now();
      const written = await request(server.base, 'POST', '/api/series/values', { token, body: { path: paths[0], value: 42, t: later } });
      assert.equal(written.status, 200, JSON.stringify(written.body));
      const last = await request(server.base, 'GET', `/api/series/last?path=${paths[0]}`, { token });
      assert.deepEqual(last.body.last, { t: later, value: 42 });
    });

    it("an rrduino client's values are readable through every query path", async () => {
      // One-second primary points, so that a few updates spaced under a second complete some.
      const rrd = '--step 1 DS:temperature:GAUGE:10:-50:110 DS:humidity:GAUGE:10:0:100 RRA:AVERAGE:0.5:1:3600 RRA:AVERAGE:0.5:10:360';
      const added = spawnFleetd(['rrduino', 'add', 'fridge', '--key', 'fridge-psk-1', `--rrd=${rrd}`, ...settings], { cwd });
      assert.equal((await added.exited).code, 0, added.stderr());
      assert.match(added.stdout(), /\/default\/fridge\/temperature/);

      const client = await TestClient.connect(server.rrduinoPort);
      try {
        assert.equal((await client.hello('fridge', 'fridge-psk-1')).length, 32);
        const temperatures = [20.5, 22, 21.25, 23];
        for (const [i, temperature] of temperatures.entries()) {
          if (i > 0) await sleep(700);
          client.update([['temperature', String(temperature)], ['humidity', String(40 + i)]]);
        }
        const path = '/default/fridge/temperature';
        // The protocol acknowledges nothing: the stored values are the only witness.
        let stored = new Map<number, number>();
        const deadline = Date.now() + 10_000;
        while ((stored = await rawMap(server.base, token, path)).size < temperatures.length && Date.now() < deadline) await sleep(50);
        assert.deepEqual([...stored.values()], temperatures);
        assert.equal(client.isClosed, false);
        const times = [...stored.keys()];

        // Last value.
        const last = await request(server.base, 'GET', `/api/series/last?path=${path}`, { token });
        assert.equal(last.status, 200);
        assert.deepEqual(last.body.last, { t: times.at(-1), value: 23 });
        const humidity = await request(server.base, 'GET', '/api/series/last?path=/default/fridge/humidity', { token });
        assert.equal(humidity.body.last.value, 43);

        // The rhizo API, with an API key as rhizo-client sends it (Basic, the key as password).
        const key = await request(server.base, 'POST', '/api/orgs/default/api-keys', { token, body: { name: 'reader', role: 'viewer' } });
        assert.equal(key.status, 201, JSON.stringify(key.body));
        const rhizo = new RhizoClient(server.base, key.body.key);
        const history = await rhizo.raw('GET', `/api/v1/resources${path}?count=10`);
        assert.equal(history.status, 200, history.body.toString());
        const parsed = JSON.parse(history.body.toString());
        assert.equal(parsed.path, path);
        assert.deepEqual(parsed.values, temperatures.map(String));
        assert.deepEqual(parsed.timestamps, times.map((time) => time / 1000));
        const current = await rhizo.raw('GET', `/api/v1/resources${path}`);
        assert.equal(current.body.toString(), '23');

        // The archives: one-second points, each the time-weighted mean of the readings over it. A
        // reading holds from the one before (the first, for the second before it: the archives start
        // there); a point more than half unknown is unknown; only points the last reading completed exist.
        const first = times[0]!;
        const segments = times.map((end, i) => ({ from: i === 0 ? end - 1000 : times[i - 1]!, to: end, value: temperatures[i]! }));
        const expected = new Map<number, number | null>();
        for (let end = Math.floor((first - 1000) / 1000) * 1000 + 1000; end <= Math.floor(times.at(-1)! / 1000) * 1000; end += 1000) {
          let known = 0;
          let sum = 0;
          for (const s of segments) {
            const overlap = Math.min(end, s.to) - Math.max(end - 1000, s.from);
            if (overlap > 0) {
              known += overlap;
              sum += overlap * s.value;
            }
          }
          expected.set(end, 1000 - known > 500 ? null : sum / known);
        }
        const start = first - 3000;
        const consolidated = await request(server.base, 'GET', `/api/series/consolidated?path=${path}&start=${start}&end=${times.at(-1)}`, { token });
        assert.equal(consolidated.status, 200, JSON.stringify(consolidated.body));
        assert.equal(consolidated.body.resolution, 1);
        assert.equal(consolidated.body.cf, 'AVERAGE');
        const points = consolidated.body.points as Array<[number, number | null]>;
        assert.ok(points.length >= 5, JSON.stringify(points));
        for (const [time, value] of points) {
          const want = expected.get(time) ?? null;
          assert.ok(close(value, want), `point ending ${time}: ${value} instead of ${want} (readings ${JSON.stringify(segments)})`);
        }
        assert.ok(points.filter(([, value]) => value !== null).length >= 2, JSON.stringify(points));
      } finally {
        client.end();
      }
    });

    it('consolidates at several resolutions what the test computes itself', async () => {
      const step = 60;
      const rrd = ['--step', String(step), 'DS:level:GAUGE:120:U:U'];
      for (const [steps, rows] of [[1, 600], [5, 300], [60, 48]] as const) for (const cf of ['AVERAGE', 'MIN', 'MAX']) rrd.push(`RRA:${cf}:0.5:${steps}:${rows}`);
      await createResource('/default', { name: 'charts', type: 'basic_folder' });
      await createResource('/default/charts', { name: 'level', type: 'sequence', sequence: { dataType: 'numeric', rrd } });
      await createResource('/default/charts', { name: 'other', type: 'sequence', sequence: { dataType: 'numeric' } });
      const path = '/default/charts/level';

      // One value a step for four hours, the first on an hour so that rows of every archive start with it.
      const count = 4 * 60 + 1;
      const base = Math.floor(Date.now() / 3600_000) * 3600_000 - 4 * 3600_000;
      const lastT = base + (count - 1) * step * 1000;
      const value = (k: number) => ((k * 7) % 13) + 0.25 * (k % 4) - 3;
      for (let k = 0; k < count; k++) {
        const reply = await request(server.base, 'POST', '/api/series/bulk', { token, body: { timestamp: base + k * step * 1000, values: { [path]: value(k), '/default/charts/other': k } } });
        assert.equal(reply.status, 200, JSON.stringify(reply.body));
        assert.deepEqual(reply.body.results[path], { stored: true });
      }
      assert.equal((await rawMap(server.base, token, path)).size, count);

      /**
       * rrdtool's rows: primary point k (ending at base + k·step) is value(k), except the first,
       * unknown, as the archive starts a second before it. A row of `steps` points ending at E holds
       * the points k in (E/step − steps, E/step], and is unknown when more than half are unknown.
       */
      const expected = (resolution: number, reduce: (values: number[]) => number) => {
        const steps = resolution / step;
        const rows = new Map<number, number | null>();
        for (let end = base; end <= lastT; end += resolution * 1000) {
          const k = (end - base) / (step * 1000);
          const known = Array.from({ length: steps }, (_, i) => k - i).filter((j) => j >= 1);
          rows.set(end, steps - known.length > steps * 0.5 ? null : reduce(known.map(value)));
        }
        return rows;
      };
      const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
      const reducers = { AVERAGE: mean, MIN: (v: number[]) => Math.min(...v), MAX: (v: number[]) => Math.max(...v) };

      for (const resolution of [60, 300, 3600]) {
        for (const cf of ['AVERAGE', 'MIN', 'MAX'] as const) {
          const reply = await request(server.base, 'GET', `/api/series/consolidated?path=${path}&start=${base}&end=${lastT}&cf=${cf}&resolution=${resolution}`, { token });
          assert.equal(reply.status, 200, JSON.stringify(reply.body));
          assert.equal(reply.body.resolution, resolution);
          assert.equal(reply.body.cf, cf);
          const want = expected(resolution, reducers[cf]);
          const points = reply.body.points as Array<[number, number | null]>;
          assert.deepEqual(
            points.map(([time]) => time),
            [...want.keys()],
            `${cf} at ${resolution} s: one point per row from the start to the end`,
          );
          for (const [time, got] of points) assert.ok(close(got, want.get(time)!), `${cf} at ${resolution} s, row ending ${time}: ${got} instead of ${want.get(time)}`);
          assert.ok(points.filter(([, v]) => v !== null).length >= want.size - 1);
        }
      }

      // rrdtool fetch's name for it, and the hourly rows checked by hand for once: the first holds points 1..60.
      const hourly = await request(server.base, 'GET', `/api/series/consolidated?path=${path}&start=${base}&end=${lastT}&step=3600`, { token });
      assert.equal(hourly.status, 200, JSON.stringify(hourly.body));
      assert.deepEqual(hourly.body.points[0], [base, null]);
      assert.ok(close(hourly.body.points[1][1], mean(Array.from({ length: 60 }, (_, i) => value(i + 1)))));
      // CSV of the same.
      const csv = await request(server.base, 'GET', `/api/series/consolidated?path=${path}&start=${base}&end=${lastT}&resolution=3600&format=csv`, { token });
      assert.equal(csv.status, 200);
      assert.match(csv.headers.get('content-type') ?? '', /^text\/csv/);
      assert.equal(csv.body.trimEnd().split('\n').length, 1 + 5);
    });

    it('stops on SIGTERM after all this', async () => {
      server.serve.child.kill('SIGTERM');
      assert.equal((await server.serve.exited).code, 0, server.serve.stderr());
      assert.deepEqual(errorLines(server.serve.stdout()), []);
    });
  });
}
