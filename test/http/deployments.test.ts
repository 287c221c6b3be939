import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../../src/server.ts';
import type { Package } from '../../src/services/packages/package.ts';
import { ShellySimulator } from '../adapters/shelly/simulator.ts';
import { backends } from '../helpers/backends.ts';
import { startNode, startTestServer, type TestServer } from '../helpers/server.ts';
import { readUntil } from '../helpers/waiting.ts';
import { busBackends, natsTestUrl } from '../hub/buses.ts';
import { otaFixtures, type OtaFixtures } from './updates-fixtures.ts';

/**
 * Deployments over HTTP: a phased rollout that pauses itself on failures, resumes and completes;
 * cancelling; maintenance windows and start times; the engine run by several nodes at once; access
 * and refused input. The engine's timer is slowed down: tests run its passes themselves.
 */

const hhmm = (date: Date) => date.toISOString().slice(11, 16);
const inHours = (hours: number) => new Date(Date.now() + hours * 3600_000);

for (const backend of await backends()) {
  describe(`deployments [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let f: OtaFixtures;
    let v2: Package;
    const deployments = () => `/api/orgs/${f.org}/deployments`;
    const tick = (now?: Date) => server.services.deployments.tick(now);
    const create = async (body: Record<string, unknown>) => {
      const created = await f.call('POST', deployments(), f.admin, body);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      return created.body;
    };
    const get = async (id: string) => (await f.call('GET', `${deployments()}/${id}`, f.viewer)).body;
    const fleet = async (name: string, size: number) => {
      const devices = [];
      for (let i = 0; i < size; i++) devices.push(await f.device(`${name} ${i}`));
      return { devices, group: await f.group(name, devices.map((d) => d.id)) };
    };
    const kinds = async (id: string) => {
      const page = await f.call('GET', `${deployments()}/${id}/events?limit=500`, f.viewer);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      return (page.body.items as Array<{ kind: string; deviceId: string | null }>).filter((e) => e.deviceId === null).map((e) => e.kind);
    };

    before(async () => {
      server = await startTestServer(backend, { rolloutInterval: '3600', messageLog: 'off' });
      f = await otaFixtures(server);
      await f.pkg('v1');
      v2 = await f.pkg('v2');
    });
    after(async () => {
      await server?.close();
    });

    it('rolls out phase by phase, pauses itself when a phase fails too often, resumes and completes', async () => {
      const { devices, group } = await fleet('rollout', 10);
      const deployment = await create({ groupId: group, targetVersion: 'v2', phases: [{ size: 2 }, { percent: 100 }], failureThreshold: 30 });
      assert.equal(deployment.status, 'running');
      assert.equal(deployment.name, 'v2 to rollout');
      assert.deepEqual(deployment.progress.phases.map((p: { devices: number; byStatus: object }) => [p.devices, p.byStatus]), [
        [2, { pending: 2 }],
        [8, { scheduled: 8 }],
      ]);
      const phaseOne = await f.call('GET', `${deployments()}/${deployment.id}/devices?status=pending`, f.viewer);
      const first = phaseOne.body.items.map((d: { deviceId: string }) => d.deviceId) as string[];
      assert.deepEqual(first, devices.slice(0, 2).map((d) => d.id).sort());
      const [failing, succeeding] = first.map((id) => devices.find((d) => d.id === id)!);
      const later = devices.filter((d) => !first.includes(d.id));

      // Only the started phase's devices get the update.
      const offer = await f.check(failing!.key, { version: 'v1' });
      assert.equal(offer.status, 200, JSON.stringify(offer.body));
      assert.deepEqual([offer.body.packageId, offer.body.deploymentId], [v2.id, deployment.id]);
      assert.equal((await f.check(succeeding!.key, { version: 'v1' })).status, 200);
      assert.equal((await f.check(later[0]!.key, { version: 'v1' })).status, 204);

      assert.equal((await f.report(failing!.key, { status: 'downloading', progress: 50 })).status, 204);
      assert.equal((await f.report(failing!.key, { status: 'failure', reason: 'checksum mismatch' })).status, 204);
      await tick();
      const paused = await get(deployment.id);
      assert.equal(paused.status, 'paused');
      assert.equal(paused.pausedReason, '1 of the 2 devices of phase 1 failed, more than 30%');
      assert.equal((await f.check(later[0]!.key, { version: 'v1' })).status, 204, 'a paused deployment starts nobody');
      // The other device of the phase goes on with what it was given.
      assert.equal((await f.report(succeeding!.key, { status: 'success', version: 'v2' })).status, 204);
      await tick();
      assert.equal((await get(deployment.id)).status, 'paused', 'it stays paused until an operator resumes it');

      const resumed = await f.call('POST', `${deployments()}/${deployment.id}/resume`, f.admin);
      assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
      assert.equal(resumed.body.status, 'running');
      assert.equal(resumed.body.currentPhase, 1, 'the accepted failure does not pause it again: the next phase starts');
      assert.deepEqual(resumed.body.progress.phases[1].byStatus, { pending: 8 });

      // The second phase: 2 failures of 8 stay under 30%.
      for (const [i, device] of later.entries()) {
        const offered = await f.check(device.key, { version: 'v1' });
        assert.equal(offered.status, 200, JSON.stringify(offered.body));
        assert.equal((await f.report(device.key, i < 2 ? { status: 'failure', reason: `bad flash ${i}` } : { status: 'success', version: 'v2' })).status, 204);
        await tick();
        assert.equal((await get(deployment.id)).status, i === later.length - 1 ? 'completed' : 'running', `after device ${i}`);
      }
      const done = await get(deployment.id);
      assert.deepEqual(done.progress.byStatus, { success: 7, failure: 3 });
      assert.ok(done.finishedAt);
      const failed = await f.call('GET', `${deployments()}/${deployment.id}/devices?status=failure`, f.viewer);
      assert.deepEqual(failed.body.items.map((d: { reason: string }) => d.reason).sort(), ['bad flash 0', 'bad flash 1', 'checksum mismatch']);
      assert.equal((await f.call('GET', `/api/orgs/${f.org}/devices/${succeeding!.id}`, f.viewer)).body.firmware, 'v2');
      assert.deepEqual(await kinds(deployment.id), [
        'deployment.created',
        'phase.started',
        'deployment.paused',
        'deployment.resumed',
        'phase.completed',
        'phase.started',
        'phase.completed',
        'deployment.completed',
      ]);
      const history = await f.call('GET', `${deployments()}/${deployment.id}/events?limit=500`, f.viewer);
      const failingHistory = history.body.items.filter((e: { deviceId: string }) => e.deviceId === failing!.id).map((e: { kind: string }) => e.kind);
      assert.deepEqual(failingHistory, ['device.offered', 'device.downloading', 'device.failure']);
      assert.equal((await f.call('POST', `${deployments()}/${deployment.id}/pause`, f.admin)).status, 409, 'a completed deployment stays so');
    });

    it('pauses and cancels on request: devices that had not begun are cancelled', async () => {
      const { devices, group } = await fleet('cancelled', 3);
      const deployment = await create({ groupId: group, targetVersion: 'v2', name: 'short-lived' });
      assert.deepEqual(deployment.progress.byStatus, { pending: 3 });
      assert.equal((await f.check(devices[0]!.key, { version: 'v1' })).status, 200);
      assert.equal((await f.report(devices[0]!.key, { status: 'downloading' })).status, 204);

      const paused = await f.call('POST', `${deployments()}/${deployment.id}/pause`, f.admin);
      assert.deepEqual([paused.status, paused.body.status, paused.body.pausedReason], [200, 'paused', 'paused by an operator']);
      assert.equal((await f.call('POST', `${deployments()}/${deployment.id}/pause`, f.admin)).status, 409);
      const cancelled = await f.call('POST', `${deployments()}/${deployment.id}/cancel`, f.admin);
      assert.equal(cancelled.status, 200);
      assert.equal(cancelled.body.status, 'cancelled');
      assert.deepEqual(cancelled.body.progress.byStatus, { downloading: 1, cancelled: 2 });
      assert.equal((await f.check(devices[1]!.key, { version: 'v1' })).status, 204);
      // The device already at it still reports.
      assert.equal((await f.report(devices[0]!.key, { status: 'success', version: 'v2' })).status, 204);
      assert.deepEqual((await get(deployment.id)).progress.byStatus, { success: 1, cancelled: 2 });
      for (const verb of ['cancel', 'resume', 'pause']) assert.equal((await f.call('POST', `${deployments()}/${deployment.id}/${verb}`, f.admin)).status, 409, verb);
      assert.deepEqual(await kinds(deployment.id), ['deployment.created', 'phase.started', 'deployment.paused', 'deployment.cancelled']);
      const audit = await f.call('GET', `/api/orgs/${f.org}/audit?targetId=${deployment.id}`, f.admin);
      assert.deepEqual(audit.body.items.map((e: { action: string }) => e.action), ['deployment.create', 'deployment.pause', 'deployment.cancel']);
    });

    it('offers nothing outside the maintenance window, and waits for its start time', async () => {
      const { devices, group } = await fleet('windowed', 1);
      const closed = await create({ groupId: group, targetVersion: 'v2', maintenanceWindow: { start: hhmm(inHours(2)), end: hhmm(inHours(3)) } });
      assert.deepEqual(closed.maintenanceWindow, { start: hhmm(inHours(2)), end: hhmm(inHours(3)) });
      assert.equal((await f.check(devices[0]!.key, { version: 'v1' })).status, 204, 'the window is closed');
      assert.equal((await f.call('POST', `${deployments()}/${closed.id}/cancel`, f.admin)).status, 200);
      await create({ groupId: group, targetVersion: 'v2', maintenanceWindow: { start: hhmm(inHours(-1)), end: hhmm(inHours(1)) } });
      assert.equal((await f.check(devices[0]!.key, { version: 'v1' })).status, 200, 'the window is open');

      const later = await fleet('later', 2);
      const scheduled = await create({ groupId: later.group, targetVersion: 'v2', startAt: inHours(2).toISOString(), phases: [{ size: 1 }, { size: 1, startAt: inHours(5).toISOString() }] });
      assert.equal(scheduled.status, 'scheduled');
      assert.deepEqual(scheduled.progress.byStatus, { scheduled: 2 });
      await tick();
      assert.equal((await get(scheduled.id)).status, 'scheduled');
      await tick(inHours(3));
      const started = await get(scheduled.id);
      assert.equal(started.status, 'running');
      assert.deepEqual(started.progress.phases.map((p: { byStatus: object }) => p.byStatus), [{ pending: 1 }, { scheduled: 1 }]);
      const [firstDevice] = later.devices;
      assert.equal((await f.check(firstDevice!.key, { version: 'v1' })).status, 200);
      assert.equal((await f.report(firstDevice!.key, { status: 'success', version: 'v2' })).status, 204);
      await tick(inHours(4));
      assert.deepEqual((await get(scheduled.id)).progress.phases[1].byStatus, { scheduled: 1 }, 'the second phase waits for its start time');
      await tick(inHours(6));
      assert.deepEqual((await get(scheduled.id)).progress.phases[1].byStatus, { pending: 1 });
    });

    it('takes each step once when several passes of the engine run at once', async () => {
      const { group } = await fleet('concurrent', 4);
      const deployment = await create({ groupId: group, targetVersion: 'v2', startAt: inHours(1).toISOString(), phases: [{ size: 2 }, { size: 2 }] });
      await Promise.all([tick(inHours(2)), tick(inHours(2)), tick(inHours(2))]);
      assert.deepEqual(await kinds(deployment.id), ['deployment.created', 'deployment.started', 'phase.started']);
      assert.deepEqual((await get(deployment.id)).progress.phases.map((p: { byStatus: object }) => p.byStatus), [{ pending: 2 }, { scheduled: 2 }]);
    });

    it('refuses bad input with 400 and stores nothing', async () => {
      const { group } = await fleet('careless', 1);
      const empty = await f.group('empty', []);
      const foreignGroup = await f.group('foreign', [], { orgId: f.otherOrg });
      const before = { deployments: await f.count('deployments'), devices: await f.count('deployment_devices'), audit: await f.count('audit_events') };
      const refusals: Array<Record<string, unknown>> = [
        {},
        { groupId: group },
        { groupId: group, targetVersion: '' },
        { groupId: group, targetVersion: 'v2', phases: [] },
        { groupId: group, targetVersion: 'v2', phases: [{ size: 0 }] },
        { groupId: group, targetVersion: 'v2', phases: [{ percent: 0 }] },
        { groupId: group, targetVersion: 'v2', phases: [{ percent: 101 }] },
        { groupId: group, targetVersion: 'v2', phases: [{ size: 1, percent: 5 }] },
        { groupId: group, targetVersion: 'v2', phases: [{ size: 1, startAt: 'tomorrow' }] },
        { groupId: group, targetVersion: 'v2', maintenanceWindow: { start: '25:00', end: '01:00' } },
        { groupId: group, targetVersion: 'v2', maintenanceWindow: { start: '01:00', end: '01:00' } },
        { groupId: group, targetVersion: 'v2', maintenanceWindow: { days: [7], start: '01:00', end: '02:00' } },
        { groupId: group, targetVersion: 'v2', maintenanceWindow: { days: [1, 1], start: '01:00', end: '02:00' } },
        { groupId: group, targetVersion: 'v2', failureThreshold: 101 },
        { groupId: group, targetVersion: 'v2', startAt: 'soon' },
        { groupId: group, targetVersion: 'v2', extra: true },
      ];
      for (const body of refusals) {
        const reply = await f.call('POST', deployments(), f.admin, body);
        assert.equal(reply.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(reply.body)}`);
        assert.equal(typeof reply.body.error?.code, 'string');
      }
      assert.equal((await f.call('POST', deployments(), f.admin, { groupId: group, targetVersion: 'v7' })).status, 409, 'no package has the version');
      assert.equal((await f.call('POST', deployments(), f.admin, { groupId: empty, targetVersion: 'v2' })).status, 409, 'a group without devices');
      assert.equal((await f.call('POST', deployments(), f.admin, { groupId: 'grp_00000000000000000000000000', targetVersion: 'v2' })).status, 404);
      assert.equal((await f.call('POST', deployments(), f.admin, { groupId: foreignGroup, targetVersion: 'v2' })).status, 404);
      assert.deepEqual({ deployments: await f.count('deployments'), devices: await f.count('deployment_devices'), audit: await f.count('audit_events') }, before);
      assert.equal((await f.call('GET', `${deployments()}/dep_00000000000000000000000000`, f.viewer)).status, 404);
      assert.equal((await f.call('GET', `${deployments()}?status=done`, f.viewer)).status, 400);
    });

    it('lets viewers read and only admins of the organization change deployments', async () => {
      const { devices, group } = await fleet('guarded', 1);
      const deployment = await create({ groupId: group, targetVersion: 'v2' });
      const body = { groupId: group, targetVersion: 'v2' };
      assert.equal((await f.call('POST', deployments(), f.viewer, body)).status, 403);
      assert.equal((await f.call('POST', deployments(), f.operator, body)).status, 403);
      assert.equal((await f.call('POST', `${deployments()}/${deployment.id}/pause`, f.viewer)).status, 403);
      assert.equal((await f.call('POST', `/api/orgs/${f.org}/deployments`, f.otherAdmin, body)).status, 404);
      assert.equal((await f.call('GET', `${deployments()}/${deployment.id}`, f.otherAdmin)).status, 404);
      assert.equal((await f.call('POST', `/api/orgs/${f.otherOrg}/deployments/${deployment.id}/cancel`, f.otherAdmin)).status, 404, 'not found from another organization');
      // A device reads no deployment, not even its own.
      assert.equal((await f.call('GET', `${deployments()}/${deployment.id}`, devices[0]!.key)).status, 404);
      assert.equal((await f.call('GET', `${deployments()}/${deployment.id}/devices`, devices[0]!.key)).status, 404);
      const list = await f.call('GET', `${deployments()}?status=running&limit=1`, f.viewer);
      assert.equal(list.status, 200);
      assert.equal(list.body.items.length, 1);
      assert.equal((await f.call('GET', `${deployments()}/${deployment.id}/devices`, f.viewer)).body.items[0].deviceId, devices[0]!.id);
      const keyed = await f.call('POST', `/api/orgs/${f.org}/api-keys`, f.admin, { name: 'deployer' });
      assert.equal((await f.call('POST', `${deployments()}/${deployment.id}/pause`, keyed.body.key)).status, 200);
      assert.equal((await f.call('DELETE', `/api/orgs/${f.org}/api-keys/${keyed.body.id}`, f.admin)).status, 200);
      assert.equal((await f.call('POST', `${deployments()}/${deployment.id}/resume`, keyed.body.key)).status, 401);
    });
  });
}

/** The engine runs by itself every rolloutInterval seconds. */
const sqlite = (await backends()).find((b) => b.name === 'sqlite')!;
describe('the deployment engine on its own [sqlite]', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer(sqlite, { rolloutInterval: '1', messageLog: 'off' });
  });
  after(async () => {
    await server?.close();
  });

  it('starts a scheduled deployment once its time comes, without being asked', async () => {
    const f = await otaFixtures(server);
    await f.pkg('v2');
    const device = await f.device('punctual');
    const group = await f.group('punctual', [device.id]);
    const created = await f.call('POST', `/api/orgs/${f.org}/deployments`, f.admin, { groupId: group, targetVersion: 'v2', startAt: new Date(Date.now() + 500).toISOString() });
    assert.equal(created.body.status, 'scheduled');
    await readUntil(
      async () => (await f.call('GET', `/api/orgs/${f.org}/deployments/${created.body.id}`, f.viewer)).body.status,
      (status) => status === 'running',
      5000,
    );
  });
});

/** Two nodes on one PostgreSQL database, joined by NATS: the engine runs on both, each step is taken once. */
const nats = (await busBackends()).find((b) => b.name === 'nats')!;
const postgres = (await backends()).find((b) => b.name === 'postgres')!;
describe('deployments on two nodes [postgres, nats]', { skip: postgres.skip ?? nats.skip }, () => {
  let first: TestServer;
  let second: RunningServer;
  let data: string;
  let f: OtaFixtures;

  before(async () => {
    const overrides = { rolloutInterval: '3600', bus: natsTestUrl, messageLog: 'off' };
    first = await startTestServer(postgres, overrides);
    data = mkdtempSync(join(tmpdir(), 'fleetd-node-'));
    second = await startNode(first.databaseUrl, data, overrides);
    f = await otaFixtures(first);
    await f.pkg('v2');
  });
  after(async () => {
    await second?.close();
    await first?.close();
    if (data) rmSync(data, { recursive: true, force: true });
  });

  it('starts each phase once, and the device connected to the other node hears of it', async () => {
    const device = await f.device('far device', { externalId: 'far-1' });
    const others = [await f.device('near 1'), await f.device('near 2')];
    const group = await f.group('split', [device.id, ...others.map((d) => d.id)]);
    const simulator = await ShellySimulator.connect({ url: `${second.url.replace(/^http/, 'ws')}/api/devices/ws`, id: 'far-1', headers: { authorization: `Bearer ${device.key}` } });
    try {
      await readUntil(() => second.hub.links.isLocal(device.id), (linked) => linked);
      const created = await f.call('POST', `/api/orgs/${f.org}/deployments`, f.admin, { groupId: group, targetVersion: 'v2', startAt: inHours(1).toISOString(), phases: [{ size: 1 }, { size: 2 }] });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const at = inHours(2);
      for (let round = 0; round < 3; round++) await Promise.all([first.services.deployments.tick(at), second.services.deployments.tick(at)]);
      const notice = await simulator.next((frame) => frame.method === 'Fleetd.UpdateAvailable');
      assert.deepEqual(notice, { jsonrpc: '2.0', method: 'Fleetd.UpdateAvailable', params: {} });
      const events = await first.services.store.db.selectFrom('update_events').select('kind').where('deployment_id', '=', created.body.id).where('device_id', 'is', null).orderBy('id').execute();
      assert.deepEqual(events.map((e) => e.kind), ['deployment.created', 'deployment.started', 'phase.started']);
      assert.equal(simulator.received.filter((frame) => frame.method === 'Fleetd.UpdateAvailable').length, 1);

      // The device's success, reported to one node, lets either node's engine start the next phase, once.
      assert.equal((await f.check(device.key, { version: 'v1' })).status, 200);
      assert.equal((await f.report(device.key, { status: 'success', version: 'v2' })).status, 204);
      await Promise.all([first.services.deployments.tick(at), second.services.deployments.tick(at)]);
      const kinds = await first.services.store.db.selectFrom('update_events').select('kind').where('deployment_id', '=', created.body.id).where('device_id', 'is', null).orderBy('id').execute();
      assert.deepEqual(kinds.map((e) => e.kind).slice(3), ['phase.completed', 'phase.started']);
    } finally {
      await simulator.close();
    }
  });
});
