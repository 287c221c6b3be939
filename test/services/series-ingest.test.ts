import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemActor } from '../../src/services/actor.ts';
import type { SequenceSettings } from '../../src/services/series/settings.ts';
import { backends } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Ingest through the Series service: acknowledged once committed, a tiny queue pushing back without
 * losing anything, min_storage_interval, device timestamps, per-value refusals, retention.
 */

for (const backend of await backends()) {
  describe(`series ingest [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let n = 0;
    const sequence = async (settings: SequenceSettings = { dataType: 'numeric' }) =>
      server.services.resources.create(systemActor, '/default', { name: `seq${++n}`, type: 'sequence', sequence: settings });
    const stored = async (id: string) =>
      (await server.services.store.db.selectFrom('sequence_values').select(['t', 'num', 'text']).where('sequence_id', '=', id).orderBy('t').execute()).map((r) => [r.t, r.num ?? r.text]);
    const base = Date.UTC(2024, 0, 1);

    before(async () => {
      // A queue of 3 values and batches of 2: every burst below has to wait for room.
      server = await startTestServer(backend, { rrduinoPort: '0', ingestQueueSize: '3', ingestBatchSize: '2', ingestFlushInterval: '1' });
    });
    after(() => server?.close());

    it('acknowledges a value only once it is committed', async () => {
      const s = await sequence();
      const [result] = await server.services.series.ingest([{ sequenceId: s.id, t: base, value: 21.5 }]);
      assert.deepEqual(result, { stored: true });
      assert.deepEqual(await stored(s.id), [[base, 21.5]]);
      const last = await server.services.series.last(systemActor.principal, s.path);
      assert.deepEqual(last.last, { t: base, value: 21.5 });
    });

    it('makes callers wait when the queue is full and loses nothing', async () => {
      const s = await sequence();
      const calls = Array.from({ length: 40 }, (_, i) => server.services.series.ingest([{ sequenceId: s.id, t: base + i * 1000, value: i }, { sequenceId: s.id, t: base + i * 1000 + 500, value: -i }]));
      const results = (await Promise.all(calls)).flat();
      assert.equal(results.length, 80);
      assert.ok(results.every((r) => 'stored' in r && r.stored));
      assert.equal((await stored(s.id)).length, 80);
    });

    it('refuses values of unknown sequences and of the wrong type alone', async () => {
      const numeric = await sequence();
      const text = await sequence({ dataType: 'text' });
      const results = await server.services.series.ingest([
        { sequenceId: numeric.id, t: base, value: 1 },
        { sequenceId: 'res_unknown', t: base, value: 1 },
        { sequenceId: numeric.id, t: base + 1, value: 'warm' },
        { sequenceId: numeric.id, t: base + 2, value: '2.5' },
        { sequenceId: text.id, t: base, value: 'hello' },
        { sequenceId: text.id, t: base + 1, value: Buffer.from('x') },
        { sequenceId: numeric.id, t: Number.NaN, value: 3 },
      ]);
      assert.deepEqual(
        results.map((r) => ('error' in r ? r.error.code : r.stored)),
        [true, 'not_found', 'bad_request', true, true, 'bad_request', 'bad_request'],
      );
      assert.deepEqual(await stored(numeric.id), [[base, 1], [base + 2, 2.5]]);
      assert.deepEqual(await stored(text.id), [[base, 'hello']]);
    });

    it('keeps values at least min_storage_interval apart, the newest always as the last value', async () => {
      const s = await sequence({ dataType: 'numeric', minStorageInterval: 10 });
      const results = await server.services.series.ingest([0, 5, 10, 12, 25].map((sec, i) => ({ sequenceId: s.id, t: base + sec * 1000, value: i })));
      assert.deepEqual(results, [{ stored: true }, { stored: false }, { stored: true }, { stored: false }, { stored: true }]);
      assert.deepEqual(await stored(s.id), [[base, 0], [base + 10_000, 2], [base + 25_000, 4]]);
      await server.services.series.ingest([{ sequenceId: s.id, t: base + 30_000, value: 5 }]);
      assert.deepEqual((await server.services.series.last(systemActor.principal, s.path)).last, { t: base + 30_000, value: 5 });
    });

    it("honours a device's own timestamps: readings buffered offline land at their time", async () => {
      const s = await sequence();
      await server.services.series.ingest([{ sequenceId: s.id, t: base + 60_000, value: 60 }]);
      // The device reconnects and sends what it buffered, older than what the server has.
      await server.services.series.ingest([10, 20, 30].map((sec) => ({ sequenceId: s.id, t: base + sec * 1000, value: sec })));
      assert.deepEqual(await stored(s.id), [[base + 10_000, 10], [base + 20_000, 20], [base + 30_000, 30], [base + 60_000, 60]]);
      assert.deepEqual((await server.services.series.last(systemActor.principal, s.path)).last, { t: base + 60_000, value: 60 }, 'the last value is the newest, not the last received');
      // The same time again replaces the value.
      await server.services.series.ingest([{ sequenceId: s.id, t: base + 20_000, value: 21 }]);
      assert.deepEqual((await stored(s.id))[1], [base + 20_000, 21]);
    });

    it('answers raw ranges inclusively, in either order, with a limit', async () => {
      const s = await sequence({ dataType: 'text' });
      await server.services.series.ingest([1, 2, 3, 4, 5].map((i) => ({ sequenceId: s.id, t: base + i * 1000, value: `v${i}` })));
      const raw = (query: Parameters<TestServer['services']['series']['raw']>[2]) => server.services.series.raw(systemActor.principal, s.path, query).then((r) => r.values.map((v) => v.value));
      assert.deepEqual(await raw({ start: base + 2000, end: base + 4000 }), ['v2', 'v3', 'v4']);
      assert.deepEqual(await raw({ order: 'desc', limit: 2 }), ['v5', 'v4']);
      await assert.rejects(raw({ start: base + 5000, end: base }), { code: 'bad_request' });
      await assert.rejects(server.services.series.consolidated(systemActor.principal, s.path, { start: base, end: base + 5000 }), { code: 'bad_request' });
    });

    it('drops values beyond the maximum count and age', async () => {
      const counted = await sequence({ dataType: 'numeric', maxHistory: 5 });
      const aged = await sequence({ dataType: 'numeric', maxAge: 60 });
      const now = Date.now();
      await server.services.series.ingest(Array.from({ length: 10 }, (_, i) => ({ sequenceId: counted.id, t: base + i, value: i })));
      await server.services.series.ingest([now - 120_000, now - 61_000, now - 30_000, now].map((t) => ({ sequenceId: aged.id, t, value: t })));
      assert.ok((await server.services.series.prune()) >= 7);
      assert.deepEqual((await stored(counted.id)).map(([t]) => t), [5, 6, 7, 8, 9].map((i) => base + i));
      assert.deepEqual((await stored(aged.id)).map(([t]) => t), [now - 30_000, now]);
    });

    it("removes an organization's values and archive rows with it", async () => {
      const org = await server.services.organizations.create(systemActor, { slug: `gone${++n}`, name: 'Gone', ownerId: server.admin.userId });
      const s = await server.services.resources.create(systemActor, `/${org.slug}`, { name: 'temperature', type: 'sequence', sequence: { dataType: 'numeric' } });
      await server.services.series.ingest(Array.from({ length: 30 }, (_, i) => ({ sequenceId: s.id, t: base + i * 60_000, value: i })));
      const db = server.services.store.db;
      const rowsOf = async () => [
        (await db.selectFrom('sequence_values').select('t').where('sequence_id', '=', s.id).execute()).length,
        (await db.selectFrom('rrd_rows').select('slot').where('sequence_id', '=', s.id).execute()).length,
      ];
      const [values, archiveRows] = await rowsOf();
      assert.ok(values === 30 && archiveRows! > 0);
      await server.services.organizations.delete(systemActor, org.slug);
      assert.deepEqual(await rowsOf(), [0, 0]);
    });
  });
}
