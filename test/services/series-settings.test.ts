import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rrdDefinition } from '../../src/core/rrd.ts';
import { systemActor } from '../../src/services/actor.ts';
import { sequenceInfo, updateSequenceSettings, type SequenceSettings } from '../../src/services/series/settings.ts';
import { backends } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

/** Sequence settings as resources are made with them: validation, defaults, archives given, inherited or default. */

for (const backend of await backends()) {
  describe(`sequence settings [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let n = 0;
    const create = (sequence: SequenceSettings) => server.services.resources.create(systemActor, '/default', { name: `s${++n}`, type: 'sequence', sequence });

    before(async () => {
      server = await startTestServer(backend, { rrduinoPort: '0' });
    });
    after(() => server?.close());

    it('refuses invalid settings', async () => {
      const invalid: Array<Partial<SequenceSettings>> = [
        { dataType: 'float' as never },
        { dataType: 'numeric', units: 'x'.repeat(101) },
        { dataType: 'numeric', decimalPlaces: 16 },
        { dataType: 'numeric', decimalPlaces: -1 },
        { dataType: 'numeric', decimalPlaces: 1.5 },
        { dataType: 'numeric', maxHistory: 0 },
        { dataType: 'numeric', minStorageInterval: -1 },
        { dataType: 'numeric', maxAge: 0 },
        { dataType: 'numeric', rrd: ['RRA:AVERAGE:2:1:10'] },
        { dataType: 'numeric', rrd: ['DS:x:GAUGE:60:U:U'] },
        { dataType: 'text', rrd: ['RRA:AVERAGE:0.5:1:10'] },
      ];
      for (const settings of invalid) await assert.rejects(create(settings as SequenceSettings), { code: 'bad_request' }, JSON.stringify(settings));
    });

    it('applies the defaults of each data type', async () => {
      const numeric = await sequenceInfo(server.services.store.db, (await create({ dataType: 'numeric' })).id);
      assert.equal(numeric?.maxHistory, 100_000);
      assert.equal(numeric?.minStorageInterval, 0);
      assert.deepEqual(numeric?.rrd, rrdDefinition());
      const text = await sequenceInfo(server.services.store.db, (await create({ dataType: 'text', units: 'log' })).id);
      assert.equal(text?.maxHistory, 10_000);
      assert.equal(text?.units, 'log');
      assert.equal(text?.rrd, null);
      const image = await sequenceInfo(server.services.store.db, (await create({ dataType: 'image' })).id);
      assert.equal(image?.maxHistory, 100_000);
      assert.equal(image?.rrd, null);
    });

    it('keeps the archives given as rrdtool arguments', async () => {
      const args = ['--step', '10', 'DS:temp:GAUGE:30:-50:110', 'RRA:AVERAGE:0.5:1:100', 'RRA:MAX:0.5:6:10'];
      const info = await sequenceInfo(server.services.store.db, (await create({ dataType: 'numeric', rrd: args, decimalPlaces: 2, maxAge: 3600, minStorageInterval: 5 })).id);
      assert.deepEqual(info?.rrd, rrdDefinition(args));
      assert.equal(info?.decimalPlaces, 2);
      assert.equal(info?.maxAge, 3600);
      assert.equal(info?.minStorageInterval, 5);
    });

    it('changes settings, but not the data type', async () => {
      const { id } = await create({ dataType: 'numeric' });
      const db = server.services.store.db;
      await updateSequenceSettings(db, id, { units: 'W', maxHistory: 10, rrd: ['--step', '5', 'RRA:LAST:0:1:10'] });
      const info = await sequenceInfo(db, id);
      assert.equal(info?.units, 'W');
      assert.equal(info?.maxHistory, 10);
      assert.equal(info?.rrd?.step, 5);
      await assert.rejects(updateSequenceSettings(db, id, { dataType: 'text' }), { code: 'bad_request' });
      await assert.rejects(updateSequenceSettings(db, id, { decimalPlaces: 99 }), { code: 'bad_request' });
      await assert.rejects(updateSequenceSettings(db, 'res_missing', { units: 'W' }), { code: 'not_found' });
      assert.equal(await sequenceInfo(db, 'res_missing'), undefined);
    });
  });
}
