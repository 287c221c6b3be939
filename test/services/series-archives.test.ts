import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemActor } from '../../src/services/actor.ts';
import { backends } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Round-robin archives fed by ingest, read back consolidated at several resolutions and checked
 * against averages, maxima and minima this test computes from the values it sent.
 */

const step = 10;
const rrd = ['--step', String(step), 'DS:v:GAUGE:100:U:U', 'RRA:AVERAGE:0.5:1:2000', 'RRA:AVERAGE:0.5:6:1000', 'RRA:MAX:0.5:6:1000', 'RRA:MIN:0.5:6:1000', 'RRA:AVERAGE:0.5:60:100'];
const count = 720;
const value = (k: number) => ((k * 7) % 13) + 0.25 * (k % 4);

for (const backend of await backends()) {
  describe(`series archives [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let path: string;
    // Three hours ago on a ten-minute boundary, so that rows of every archive start with the values.
    const base = Math.floor(Date.now() / 600_000) * 600_000 - 3 * 3600_000;
    const lastT = base + (count - 1) * step * 1000;

    /**
     * One value every step, on the step: primary point k (ending at base + k·step) is value(k); the
     * first is unknown, as the archive starts just before it. A row of `steps` points ending at E
     * holds the points k in (E/step - steps, E/step].
     */
    function expected(resolution: number, reduce: (values: number[]) => number): Map<number, number | null> {
      const steps = resolution / step;
      const rows = new Map<number, number | null>();
      for (let end = base; end <= lastT; end += resolution * 1000) {
        const k = (end - base) / (step * 1000);
        const points = Array.from({ length: steps }, (_, i) => k - i).filter((j) => j >= 1);
        // More than half unknown (xff 0.5): unknown.
        rows.set(end, steps - points.length > steps * 0.5 ? null : reduce(points.map(value)));
      }
      return rows;
    }
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

    before(async () => {
      server = await startTestServer(backend, { rrduinoPort: '0', ingestBatchSize: '100' });
      path = (await server.services.resources.create(systemActor, '/default', { name: 'archived', type: 'sequence', sequence: { dataType: 'numeric', rrd } })).path;
      const sequenceId = (await server.services.resources.resolve(systemActor.principal, path)).id;
      const values = Array.from({ length: count }, (_, k) => ({ sequenceId, t: base + k * step * 1000, value: value(k) }));
      // As devices send them: several calls at once, in order.
      for (let i = 0; i < values.length; i += 90) await Promise.all([server.services.series.ingest(values.slice(i, i + 45)), server.services.series.ingest(values.slice(i + 45, i + 90))]);
    });
    after(() => server?.close());

    const check = async (resolution: number, cf: 'AVERAGE' | 'MAX' | 'MIN', reduce: (values: number[]) => number) => {
      const result = await server.services.series.consolidated(systemActor.principal, path, { start: base, end: lastT, cf, resolution });
      assert.equal(result.resolution, resolution);
      assert.equal(result.cf, cf);
      const want = expected(resolution, reduce);
      let compared = 0;
      for (const [t, got] of result.points) {
        if (!want.has(t)) continue;
        const w = want.get(t)!;
        if (w === null) assert.equal(got, null, `row ending ${t}`);
        else assert.ok(got !== null && Math.abs(got - w) < 1e-9, `row ending ${t}: ${got} instead of ${w}`);
        compared++;
      }
      assert.ok(compared >= want.size - 1, `compared ${compared} of ${want.size} rows`);
    };

    it('keeps every primary point at the step', () => check(10, 'AVERAGE', mean));
    it('averages six points a minute', () => check(60, 'AVERAGE', mean));
    it('keeps the minute maximum and minimum', async () => {
      await check(60, 'MAX', (v) => Math.max(...v));
      await check(60, 'MIN', (v) => Math.min(...v));
    });
    it('averages sixty points in ten minutes', () => check(600, 'AVERAGE', mean));

    it('picks the finest archive covering the range when no resolution is asked', async () => {
      const result = await server.services.series.consolidated(systemActor.principal, path, { start: base, end: lastT });
      assert.equal(result.resolution, 10);
    });

    it('leaves values older than the last archive update out of the archives, not out of the history', async () => {
      const sequenceId = (await server.services.resources.resolve(systemActor.principal, path)).id;
      const late = base + 5 * step * 1000 + 3000;
      assert.deepEqual(await server.services.series.ingest([{ sequenceId, t: late, value: 1000 }]), [{ stored: true }]);
      await check(60, 'AVERAGE', mean);
      const raw = await server.services.series.raw(systemActor.principal, path, { start: late, end: late });
      assert.deepEqual(raw.values, [{ t: late, value: 1000 }]);
    });
  });
}
