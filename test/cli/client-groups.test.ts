import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TestServer } from '../helpers/server.ts';
import { type ClientRunner, createDevice, useClientServer, describeRun, tableRows } from './client-run.ts';

/**
 * The client's group commands run as `bin/fleetd.js` against a real server. SQLite is enough: the server is under test elsewhere.
 */

let server: TestServer;
let cli: ClientRunner;
useClientServer((started) => ({ server, cli } = started));

describe('fleetd groups', () => {
  it('create, list, add, devices, remove and delete, by name or id, with --json', async () => {
    const [boiler, pump] = [await createDevice(server, 'boiler'), await createDevice(server, 'pump', ['cellar'])];
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
    const [one, two] = [await createDevice(server, 'twin'), await createDevice(server, 'twin')];
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
