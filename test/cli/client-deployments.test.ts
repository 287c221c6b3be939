import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { waitFor } from '../helpers/process.ts';
import { request, type TestServer } from '../helpers/server.ts';
import { type ClientRunner, useClientServer, describeRun, tableRows } from './client-run.ts';

/**
 * The OTA flow from the command line, against a real server: upload a package, make a group with a
 * policy, roll the version out with a deployment and watch it finish while simulated devices update.
 */

const deviceType = 'board-a';
let server: TestServer;
let cli: ClientRunner;
useClientServer((started) => ({ server, cli } = started));

/** A device with a key of its own, to check for updates and report as fleetd's devices do. */
async function deviceWithKey(name: string): Promise<{ id: string; key: string }> {
  const created = await request(server.url, 'POST', `/api/orgs/${server.admin.orgId}/devices`, { token: server.admin.token, body: { name } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const key = await request(server.url, 'POST', `/api/orgs/${server.admin.orgId}/api-keys`, { token: server.admin.token, body: { name: `${name} key`, deviceId: created.body.id } });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  return { id: created.body.id, key: key.body.key };
}

/** The device's side of an update: it checks, is offered `version`, and reports success. */
async function updateDevice(key: string, version: string): Promise<void> {
  const offer = await request(server.url, 'POST', '/api/devices/self/update-check', { token: key, body: { version: '1.0', deviceType } });
  assert.equal(offer.status, 200, JSON.stringify(offer.body));
  assert.equal(offer.body.version, version);
  const reported = await request(server.url, 'POST', '/api/devices/self/update-status', { token: key, body: { status: 'success', version } });
  assert.equal(reported.status, 204, JSON.stringify(reported.body));
}

interface Deployment {
  id: string;
  name: string;
  status: string;
  groupId: string;
  phases: unknown[];
  maintenanceWindow: unknown;
  failureThreshold: number;
  progress: { devices: number; byStatus: Record<string, number> };
}

describe('fleetd groups policy and deployments', () => {
  let devices: Array<{ id: string; key: string }>;
  let groupId: string;
  let packageId: string;

  before(async () => {
    devices = [await deviceWithKey('unit-1'), await deviceWithKey('unit-2'), await deviceWithKey('unit-3')];
    const firmware = join(cli.home, 'firmware-2.0.bin');
    writeFileSync(firmware, 'firmware 2.0');
    packageId = (await cli.json<{ id: string }>(['packages', 'upload', firmware, '--version', '2.0', '--device-type', deviceType])).id;
    groupId = (await cli.json<{ id: string }>(['groups', 'create', 'rollout'])).id;
    await cli.ok(['groups', 'add', 'rollout', ...devices.map((d) => d.id)]);
  });

  it('groups policy sets exact_match with its version, and no_update', async () => {
    const exact = await cli.ok(['groups', 'policy', 'rollout', 'exact_match', '--version', '2.0']);
    assert.equal(exact, `Group ${groupId} now has policy exact_match (version 2.0).\n`);
    const listed = tableRows(await cli.ok(['groups', 'list']));
    assert.equal(listed.find((row) => row[1] === 'rollout')?.[4], 'exact_match 2.0');
    const none = await cli.json<{ updatePolicy: string; targetVersion: string | null }>(['groups', 'policy', groupId, 'no_update']);
    assert.deepEqual([none.updatePolicy, none.targetVersion], ['no_update', null]);
  });

  it('groups packages shows, replaces and clears the package set', async () => {
    assert.equal(await cli.ok(['groups', 'packages', 'rollout']), 'Package set: none: every package of the devices’ type\n');
    assert.equal(await cli.ok(['groups', 'packages', 'rollout', packageId]), `Package set now: ${packageId}\n`);
    assert.deepEqual(await cli.json(['groups', 'packages', groupId]), { packageIds: [packageId] });
    assert.deepEqual(await cli.json(['groups', 'packages', 'rollout', '--clear']), { packageIds: [] });
    const [unknown, both] = await Promise.all([cli.run(['groups', 'packages', 'rollout', 'pkg_nope']), cli.run(['groups', 'packages', 'rollout', packageId, '--clear'])]);
    assert.equal(unknown.code, 1, describeRun(unknown));
    assert.match(unknown.stderr, /\(HTTP 409 conflict\)\n$/);
    assert.equal(both.code, 2, describeRun(both));
    assert.match(both.stderr, /Give package ids or --clear, not both/);
  });

  it('create starts a phased deployment; status and list show it; status --watch follows it to the end', async () => {
    const created = await cli.json<Deployment>(['deployments', 'create', '--group', 'rollout', '--version', '2.0', '--name', 'spring', '--phases', '1,100%', '--failure-threshold', '50', '--window', '00:00-23:59']);
    assert.deepEqual(
      { name: created.name, status: created.status, groupId: created.groupId, phases: created.phases, window: created.maintenanceWindow, threshold: created.failureThreshold, devices: created.progress.devices },
      { name: 'spring', status: 'running', groupId, phases: [{ size: 1 }, { percent: 100 }], window: { start: '00:00', end: '23:59' }, threshold: 50, devices: 3 },
    );

    const status = await cli.ok(['deployments', 'status', created.id]);
    const lines = status.trimEnd().split('\n');
    assert.equal(lines[0], `Deployment ${created.id} (spring): running, phase 1 of 2`);
    assert.equal(lines[1], `Version 2.0 to group ${groupId}; pauses above 50% failures; window 00:00-23:59 UTC`);
    assert.match(lines[2]!, /^\[-{30}\] 0% \(0 of 3 devices finished\): scheduled 2, pending 1$/);
    assert.deepEqual(lines.slice(3), ['  phase 1 (1 device): pending 1', '  phase 2 (100%: 2 devices): scheduled 2']);

    const rows = tableRows(await cli.ok(['deployments', 'list']));
    assert.deepEqual(rows[0], ['ID', 'NAME', 'STATUS', 'VERSION', 'GROUP', 'PHASE', 'CREATED']);
    assert.deepEqual(rows[1]!.slice(0, 6), [created.id, 'spring', 'running', '2.0', groupId, '1/2']);
    assert.deepEqual((await cli.json<Deployment[]>(['deployments', 'list'])).map((d) => d.id), [created.id]);

    // Standard output is no terminal here: each change of the status is printed below the last.
    const watching = cli.start(['deployments', 'status', created.id, '--watch', '--interval', '0.2']);
    await waitFor(() => watching.spawned.stdout().includes('phase 1 of 2'), () => watching.spawned.stdout() + watching.spawned.stderr());
    const inPhase1 = (await request(server.url, 'GET', `/api/orgs/default/deployments/${created.id}/devices?status=pending`, { token: server.admin.token })).body.items as Array<{ deviceId: string }>;
    assert.equal(inPhase1.length, 1);
    const first = devices.find((d) => d.id === inPhase1[0]!.deviceId)!;
    await updateDevice(first.key, '2.0');
    await server.services.deployments.tick();
    for (const device of devices.filter((d) => d !== first)) await updateDevice(device.key, '2.0');
    await server.services.deployments.tick();

    const watched = await watching.ended;
    assert.equal(watched.code, 0, describeRun(watched));
    const blocks = watched.stdout.trimEnd().split('\n\n');
    assert.ok(blocks.length >= 2, watched.stdout);
    assert.match(blocks[0]!, /: running, phase 1 of 2\n/);
    assert.equal(blocks.at(-1)!.split('\n')[0], `Deployment ${created.id} (spring): completed`);
    assert.match(blocks.at(-1)!, /\[#{30}\] 100% \(3 of 3 devices finished\): success 3\n {2}phase 1 \(1 device\): success 1\n {2}phase 2 \(100%: 2 devices\): success 2$/);
  });

  it('pause, resume and cancel change a deployment and say what it is now', async () => {
    const created = await cli.json<Deployment>(['deployments', 'create', '--group', groupId, '--version', '2.0']);
    assert.equal(await cli.ok(['deployments', 'pause', created.id]), `Paused deployment ${created.id}: now paused.\n`);
    const paused = await cli.ok(['deployments', 'status', created.id]);
    assert.match(paused, new RegExp(`^Deployment ${created.id} \\(2\\.0 to rollout\\): paused, phase 1 of 1\\n`));
    const resumed = await cli.json<Deployment>(['deployments', 'resume', created.id]);
    assert.equal(resumed.status, 'running');
    assert.equal(await cli.ok(['deployments', 'cancel', created.id]), `Cancelled deployment ${created.id}: now cancelled.\n`);
    const again = await cli.run(['deployments', 'resume', created.id]);
    assert.equal(again.code, 1, describeRun(again));
    assert.match(again.stderr, /^fleetd: .+ \(HTTP 409 conflict\)\n$/);
    // A finished deployment: --watch prints it once and ends at once.
    const watched = await cli.ok(['deployments', 'status', created.id, '--watch', '--json']);
    assert.equal((JSON.parse(watched) as Deployment).status, 'cancelled');
  });

  it('refuses bad options with exit 2, and what the server refuses with its message and exit 1', async () => {
    const runs = await Promise.all([
      cli.run(['deployments', 'create', '--group', 'rollout', '--version', '2.0', '--phases', '1,abc']),
      cli.run(['deployments', 'create', '--group', 'rollout', '--version', '2.0', '--window', '25:00-01:00']),
      cli.run(['deployments', 'create', '--group', 'rollout', '--version', '2.0', '--failure-threshold', '120']),
      cli.run(['deployments', 'create', '--group', 'rollout', '--version', '2.0', '--window-days', '1']),
      cli.run(['deployments', 'create', '--group', 'rollout']),
      cli.run(['deployments', 'create', '--group', 'rollout', '--version', '9.9']),
      cli.run(['deployments', 'create', '--group', 'nonesuch', '--version', '2.0']),
      cli.run(['deployments', 'status', 'dep_unknown']),
    ]);
    const expected: Array<[number, RegExp]> = [
      [2, /--phases: "abc" is neither a device count \(5\) nor a percentage \(10%\) of the group/],
      [2, /--window "25:00-01:00" must be HH:MM-HH:MM \(UTC\)/],
      [2, /--failure-threshold "120" must be a percentage from 0 to 100/],
      [2, /--window-days needs --window/],
      [2, /required option '--version <version>' not specified/],
      [1, /^fleetd: No package of the organization has version "9\.9" \(HTTP 409 conflict\)\n$/],
      [1, /^fleetd: No group named "nonesuch" in organization default\n$/],
      [1, /not found \(HTTP 404 not_found\)\n$/],
    ];
    for (const [i, run] of runs.entries()) {
      assert.equal(run.code, expected[i]![0], describeRun(run));
      assert.match(run.stderr, expected[i]![1]);
    }
  });
});
