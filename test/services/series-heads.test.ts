import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { systemActor } from '../../src/services/actor.ts';
import type { RunningServer } from '../../src/server.ts';
import { backends } from '../helpers/backends.ts';
import { startNode, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Each node keeps the sequences it writes to between batches (services/series/sequence-heads.ts).
 * Two nodes on one database, each with its own cache and no bus between them, write to the same
 * sequences: whatever one node wrote, the other's next batch builds on it, never on its own older
 * copy; settings changed and sequences deleted elsewhere take effect at once.
 */
for (const backend of await backends()) {
  describe(`series heads across nodes [${backend.name}]`, { skip: backend.skip }, () => {
    let first: TestServer;
    let second: RunningServer;
    let data: string;
    let n = 0;
    const base = Date.UTC(2024, 0, 1);
    // Caches that would hold for the whole test: only the revision check keeps the nodes right.
    const overrides = { rrduinoPort: '0', cacheTtl: '300' };

    before(async () => {
      first = await startTestServer(backend, overrides);
      data = mkdtempSync(join(tmpdir(), 'fleetd-heads-'));
      second = await startNode(first.databaseUrl, data, overrides);
    });
    after(async () => {
      await second?.close();
      await first?.close();
      if (data) rmSync(data, { recursive: true, force: true });
    });

    const sequence = async (settings = {}) => first.services.resources.create(systemActor, '/default', { name: `heads${++n}`, type: 'sequence', sequence: { dataType: 'numeric', ...settings } });
    const row = async (id: string) => first.services.store.db.selectFrom('sequences').select(['last_t', 'last_num', 'rrd_state', 'revision']).where('resource_id', '=', id).executeTakeFirstOrThrow();
    const archiveRows = async (id: string) =>
      (await first.services.store.db.selectFrom('rrd_rows').select(['archive', 'slot', 't', 'value']).where('sequence_id', '=', id).orderBy('archive').orderBy('slot').execute()).map((r) => [r.archive, r.slot, r.t, r.value]);
    const minute = (i: number) => ({ t: base + i * 60_000, value: 10 + (i % 7) });

    it('continues from what the other node wrote: the same archives as one node writing everything', async () => {
      const shared = await sequence();
      const alone = await sequence();
      const nodes = [first.services.series, second.services.series];
      for (let round = 0; round < 6; round++) {
        const values = Array.from({ length: 5 }, (_, k) => minute(round * 5 + k));
        const results = await nodes[round % 2]!.ingest(values.map((v) => ({ sequenceId: shared.id, ...v })));
        assert.ok(results.every((r) => 'stored' in r && r.stored));
        await first.services.series.ingest(values.map((v) => ({ sequenceId: alone.id, ...v })));
      }
      const [a, b] = [await row(shared.id), await row(alone.id)];
      assert.deepEqual([a.last_t, a.last_num, a.rrd_state], [b.last_t, b.last_num, b.rrd_state]);
      assert.equal(a.revision, 6);
      assert.deepEqual(await archiveRows(shared.id), await archiveRows(alone.id));
      assert.ok((await archiveRows(shared.id)).length > 0);
    });

    it('honours settings changed on the other node in its next batch', async () => {
      const s = await sequence();
      await first.services.series.ingest([{ sequenceId: s.id, t: base, value: 1 }]);
      await second.services.resources.update(systemActor, s.path, { sequence: { minStorageInterval: 60 } });
      const results = await first.services.series.ingest([base + 10_000, base + 70_000].map((t) => ({ sequenceId: s.id, t, value: 2 })));
      assert.deepEqual(results, [{ stored: false }, { stored: true }]);
    });

    it('takes no more values for a sequence deleted on the other node', async () => {
      const s = await sequence();
      await first.services.series.ingest([{ sequenceId: s.id, t: base, value: 1 }]);
      await second.services.resources.delete(systemActor, s.path);
      const [result] = await first.services.series.ingest([{ sequenceId: s.id, t: base + 1000, value: 2 }]);
      assert.ok(result && 'error' in result && result.error.code === 'not_found');
      const values = await first.services.store.db.selectFrom('sequence_values').select('t').where('sequence_id', '=', s.id).execute();
      assert.deepEqual(values, [{ t: base }]);
    });
  });
}
