import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { request, type TestServer } from '../helpers/server.ts';
import { type ClientRunner, useClientServer, describeRun, tableRows } from './client-run.ts';

/**
 * The client commands (devices, groups) run as `bin/fleetd.js` against a real server. SQLite is enough: the server is under test elsewhere.
 */

let server: TestServer;
let cli: ClientRunner;
useClientServer((started) => ({ server, cli } = started));

async function createDevice(name: string, tags: string[] = []): Promise<string> {
  const made = await request(server.url, 'POST', `/api/orgs/${server.admin.orgId}/devices`, { token: server.admin.token, body: { name, tags, model: 'Pro 1' } });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  return made.body.id;
}

describe('fleetd devices', () => {
  it('list prints an aligned table, filters by tag and online, and --json prints the devices', async () => {
    const kitchen = await createDevice('kitchen-plug', ['kitchen', 'power']);
    await createDevice('hall-light', ['hall']);
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

describe('fleetd groups', () => {
  it('create, list, add, devices, remove and delete, by name or id, with --json', async () => {
    const [boiler, pump] = [await createDevice('boiler'), await createDevice('pump', ['cellar'])];
    const created = await cli.ok(['groups', 'create', 'cellar-static', '--description', 'The cellar', '--priority', '5']);
    assert.match(created, /^Created static group grp_\w+ \(cellar-static\)\.\n$/);
    const dynamic = await cli.json<{ id: string; kind: string; filter: unknown; priority: number }>(['groups', 'create', 'cellar-tagged', '--filter-tags', 'cellar', '--filter-model', 'Pro 1']);
    assert.deepEqual([dynamic.kind, dynamic.filter, dynamic.priority], ['dynamic', { tags: ['cellar'], model: 'Pro 1' }, 0]);

    const listed = await cli.json<Array<{ id: string; name: string }>>(['groups', 'list']);
    const staticId = listed.find((g) => g.name === 'cellar-static')!.id;
    const rows = tableRows(await cli.ok(['groups', 'list']));
    assert.deepEqual(rows[0]!.slice(0, 4), ['ID', 'NAME', 'KIND', 'PRIORITY']);
    assert.ok(rows.some((row) => row[0] === staticId && row[1] === 'cellar-static' && row[2] === 'static' && row[3] === '5' && row.at(-1) === 'The cellar'));

    assert.equal(await cli.ok(['groups', 'add', 'cellar-static', boiler, 'pump']), `Added 2 devices to group ${staticId}.\n`);
    assert.equal(await cli.ok(['groups', 'add', staticId, boiler]), `Added 0 devices to group ${staticId} (1 already in it).\n`);
    assert.deepEqual((await cli.json<Array<{ id: string }>>(['groups', 'devices', 'cellar-static'])).map((d) => d.id).sort(), [boiler, pump].sort());
    assert.deepEqual((await cli.json<Array<{ id: string }>>(['groups', 'devices', 'cellar-tagged'])).map((d) => d.id), [pump]);

    assert.equal(await cli.ok(['groups', 'remove', 'cellar-static', 'boiler']), `Removed 1 device from group ${staticId}.\n`);
    assert.deepEqual((await cli.json<Array<{ id: string }>>(['groups', 'devices', staticId])).map((d) => d.id), [pump]);

    const unknownDevice = await cli.run(['groups', 'add', 'cellar-static', 'no-such-device']);
    assert.equal(unknownDevice.code, 1, describeRun(unknownDevice));
    assert.equal(unknownDevice.stderr, 'fleetd: No device named "no-such-device" in organization default\n');

    assert.equal(await cli.ok(['groups', 'delete', 'cellar-static']), `Deleted group ${staticId}.\n`);
    const gone = await cli.run(['groups', 'delete', staticId]);
    assert.equal(gone.code, 1, describeRun(gone));
    assert.match(gone.stderr, /not found \(HTTP 404 not_found\)\n$/);
  });

  it('two devices of one name must be named by id', async () => {
    const [one, two] = [await createDevice('twin'), await createDevice('twin')];
    await cli.ok(['groups', 'create', 'twins']);
    const run = await cli.run(['groups', 'add', 'twins', 'twin']);
    assert.equal(run.code, 1, describeRun(run));
    assert.equal(run.stderr, `fleetd: 2 devices are named "twin": give the id (${[one, two].sort().join(', ')})\n`);
  });

  it('refuses bad usage before asking the server, with exit 2', async () => {
    const runs = await Promise.all([
      cli.run(['groups', 'create', 'x', '--priority', 'high']),
      cli.run(['groups', 'policy', 'twins', 'exact_match']),
      cli.run(['groups', 'policy', 'twins', 'no_update', '--version', '1.0']),
      cli.run(['groups', 'policy', 'twins', 'latest']),
    ]);
    const messages = [/--priority "high" must be a whole number/, /exact_match needs the target version: --version <version>/, /no_update takes no --version/, /Allowed choices are no_update, exact_match/];
    for (const [i, run] of runs.entries()) {
      assert.equal(run.code, 2, describeRun(run));
      assert.match(run.stderr, messages[i]!);
    }
  });
});
