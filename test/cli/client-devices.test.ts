import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TestServer } from '../helpers/server.ts';
import { type ClientRunner, createDevice, useClientServer, describeRun, tableRows } from './client-run.ts';

/**
 * The client's device commands run as `bin/fleetd.js` against a real server. SQLite is enough: the server is under test elsewhere.
 */

let server: TestServer;
let cli: ClientRunner;
useClientServer((started) => ({ server, cli } = started));

describe('fleetd devices', () => {
  it('list prints an aligned table, filters by tag and online, and --json prints the devices', async () => {
    const kitchen = await createDevice(server, 'kitchen-plug', ['kitchen', 'power']);
    await createDevice(server, 'hall-light', ['hall']);
    const table = await cli.ok(['devices', 'list', '--tag', 'kitchen']);
    const rows = tableRows(table);
    assert.deepEqual(rows[0], ['ID', 'NAME', 'ONLINE', 'MODEL', 'FIRMWARE', 'TAGS', 'LAST SEEN']);
    assert.deepEqual(rows.slice(1), [[kitchen, 'kitchen-plug', 'no', 'Pro 1', '-', 'kitchen,power', '-']]);
    const lines = table.trimEnd().split('\n');
    assert.equal(lines[0]!.indexOf('NAME'), lines[1]!.indexOf('kitchen-plug'), 'columns are aligned');

    const all = await cli.json<Array<{ id: string; name: string; tags: string[] }>>(['devices', 'list']);
    assert.ok(all.some((d) => d.id === kitchen && d.tags.includes('power')));
    assert.ok(all.some((d) => d.name === 'hall-light'));
    assert.equal((await cli.ok(['devices', 'list', '--online'])).trim(), 'No devices.');
    assert.deepEqual(await cli.json(['devices', 'list', '--online']), []);
  });

  it('pending lists waiting devices; accept admits one with a name and tags; deny refuses another', async () => {
    for (const externalId of ['shelly-aa01', 'shelly-bb02']) {
      const decision = await server.services.admission.admit({ endpoint: 'devices', externalId, orgHint: 'default', info: { model: 'Plus 1PM' } });
      assert.equal(decision.status, 'pending');
    }
    const pending = await cli.json<Array<{ id: string; externalId: string; state: string }>>(['devices', 'pending']);
    assert.deepEqual(pending.map((p) => [p.externalId, p.state]).sort(), [['shelly-aa01', 'pending'], ['shelly-bb02', 'pending']]);
    const table = tableRows(await cli.ok(['devices', 'pending']));
    assert.deepEqual(table[0], ['ID', 'EXTERNAL ID', 'ENDPOINT', 'STATE', 'MODEL', 'ATTEMPTS', 'ADDRESS', 'LAST SEEN']);
    assert.ok(table.some((row) => row[1] === 'shelly-aa01' && row[2] === 'devices' && row[4] === 'Plus 1PM'));

    const first = pending.find((p) => p.externalId === 'shelly-aa01')!;
    const second = pending.find((p) => p.externalId === 'shelly-bb02')!;
    const accepted = await cli.ok(['devices', 'accept', first.id, '--name', 'porch', '--tags', 'outdoor,light']);
    assert.match(accepted, new RegExp(`^Accepted ${first.id}: device dev_\\w+ \\(porch\\)\\.\\n$`));
    const denied = await cli.json<{ id: string; state: string }>(['devices', 'deny', second.id]);
    assert.deepEqual([denied.id, denied.state], [second.id, 'denied']);

    const devices = await cli.json<Array<{ name: string; externalId: string; tags: string[] }>>(['devices', 'list', '--tag', 'outdoor']);
    assert.deepEqual(devices.map((d) => [d.name, d.externalId, d.tags]), [['porch', 'shelly-aa01', ['light', 'outdoor']]]);
    assert.equal((await cli.ok(['devices', 'pending'])).trim(), 'No devices waiting.');
    assert.deepEqual((await cli.json<Array<{ externalId: string }>>(['devices', 'pending', '--denied'])).map((p) => p.externalId), ['shelly-bb02']);

    const again = await cli.run(['devices', 'deny', second.id]);
    assert.equal(again.code, 1, describeRun(again));
    assert.match(again.stderr, /^fleetd: .+ \(HTTP 409 conflict\)\n$/);
  });
});
