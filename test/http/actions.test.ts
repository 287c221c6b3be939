import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connectDevice, registerDevice, type RegisteredDevice } from '../adapters/shell/harness.ts';
import type { JsonObject } from '../adapters/shelly/simulator.ts';
import { backends } from '../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../helpers/server.ts';
import { eventually } from '../hub/websocket-harness.ts';

/** Capabilities and actions a device advertises, runs queued and sent to it, its results, cancel and timeout. */

const advertised = [
  { id: 'reboot', name: 'Reboot', description: 'Restarts the device' },
  { id: 'logs', name: 'Collect logs' },
];

for (const backend of await backends()) {
  describe(`actions [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    const admin = () => ({ token: server.admin.token });
    const base = (deviceId: string) => `/api/orgs/${org}/devices/${deviceId}`;
    /** A device that advertises the actions and runs them: it answers at once, then reports exit code 0 with "done <action>". */
    const runner = async (externalId: string, capabilities?: Record<string, boolean>) => {
      const device = await registerDevice(server, org, externalId, capabilities);
      const advertisedNow = await request(server.url, 'PUT', '/api/devices/self/actions', { token: device.key, body: { actions: advertised } });
      assert.equal(advertisedNow.status, 200, JSON.stringify(advertisedNow.body));
      return device;
    };
    const reportingDevice = (device: RegisteredDevice, exitCode = 0) => ({
      onRunAction(params: JsonObject) {
        setTimeout(() => void report(device, String(params.runId), { exitCode, output: Buffer.from(`done ${String(params.actionId)}`).toString('base64') }), 10);
        return { result: {} };
      },
    });
    const report = (device: RegisteredDevice, runId: string, body: unknown) => request(server.url, 'POST', `/api/devices/self/action-runs/${runId}/result`, { token: device.key, body });
    const runOf = async (deviceId: string, runId: string) => (await request(server.url, 'GET', `${base(deviceId)}/action-runs/${runId}`, admin())).body;
    const start = (deviceId: string, actionId: string, token = server.admin.token) => request(server.url, 'POST', `${base(deviceId)}/actions/${actionId}/runs`, { token });

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off', actionQueueSize: '3', actionTimeout: '2' });
      org = server.admin.orgId;
    });
    after(async () => {
      await server?.close();
    });

    it('stores what a device says of itself, and refuses what is malformed without storing it', async () => {
      const device = await runner('actions-1');
      const listed = await request(server.url, 'GET', `${base(device.id)}/actions`, admin());
      assert.equal(listed.status, 200);
      assert.deepEqual(
        listed.body.actions.map((a: any) => [a.id, a.name, a.description]),
        [
          ['logs', 'Collect logs', ''],
          ['reboot', 'Reboot', 'Restarts the device'],
        ],
      );
      const ownView = await request(server.url, 'GET', `${base(device.id)}/actions`, { token: device.key });
      assert.equal(ownView.status, 200, 'a device reads its own actions');

      for (const body of [{ actions: [advertised[0], advertised[0]] }, { actions: [{ id: 'has space', name: 'x' }] }, { actions: [{ id: 'x' }] }, { actions: 'reboot' }]) {
        const refused = await request(server.url, 'PUT', '/api/devices/self/actions', { token: device.key, body });
        assert.equal(refused.status, 400, JSON.stringify(body));
        assert.ok(refused.body.error.code, 'the JSON error body');
      }
      for (const body of [{ capabilities: { shell: 'yes' } }, { capabilities: { 'bad key': true } }, {}]) {
        assert.equal((await request(server.url, 'PUT', '/api/devices/self/capabilities', { token: device.key, body })).status, 400, JSON.stringify(body));
      }
      assert.equal((await request(server.url, 'GET', `${base(device.id)}/actions`, admin())).body.actions.length, 2, 'nothing was replaced');

      // Only a device speaks for itself: not a person, not a revoked key.
      assert.equal((await request(server.url, 'PUT', '/api/devices/self/actions', { ...admin(), body: { actions: [] } })).status, 403);
      assert.equal((await request(server.url, 'PUT', '/api/devices/self/capabilities', { ...admin(), body: { capabilities: {} } })).status, 403);
      await request(server.url, 'DELETE', `/api/orgs/${org}/api-keys/${device.keyId}`, admin());
      assert.equal((await request(server.url, 'PUT', '/api/devices/self/actions', { token: device.key, body: { actions: [] } })).status, 401);
    });

    it('sends a run to an online device at once and stores its result', async () => {
      const device = await runner('actions-2');
      const { simulator } = await connectDevice(server, server, org, device, reportingDevice(device));
      const started = await start(device.id, 'reboot');
      assert.equal(started.status, 202, JSON.stringify(started.body));
      assert.equal(started.body.status, 'pending');
      assert.deepEqual(started.body.requestedBy, { type: 'user', id: server.admin.userId });
      const call = await simulator.request('Fleetd.RunAction');
      assert.deepEqual(call.params, { runId: started.body.id, actionId: 'reboot' });
      await eventually(async () => (await runOf(device.id, started.body.id)).status === 'succeeded', 5000, 'the result');
      const run = await runOf(device.id, started.body.id);
      assert.equal(run.exitCode, 0);
      assert.equal(Buffer.from(run.output, 'base64').toString(), 'done reboot');
      assert.ok(run.sentAt && run.finishedAt);
      assert.equal((await report(device, run.id, { exitCode: 0 })).status, 409, 'a run takes one result');

      const log = await request(server.url, 'GET', `${base(device.id)}/action-runs`, admin());
      assert.deepEqual(log.body.items.map((r: any) => r.id), [run.id]);
      const audit = await request(server.url, 'GET', `/api/orgs/${org}/audit?action=action.run&targetId=${device.id}`, admin());
      assert.equal(audit.body.items[0].details.runId, run.id);
      await simulator.close();
    });

    it('marks a non-zero exit failed, and refuses results that are malformed or not the device’s to give', async () => {
      const device = await runner('actions-3');
      const { simulator } = await connectDevice(server, server, org, device, reportingDevice(device, 2));
      const started = await start(device.id, 'logs');
      await eventually(async () => (await runOf(device.id, started.body.id)).status === 'failed', 5000, 'the failure');
      assert.equal((await runOf(device.id, started.body.id)).exitCode, 2);

      const other = await runner('actions-4');
      assert.equal((await report(other, started.body.id, { exitCode: 0 })).status, 404, "another device's run");
      assert.equal((await report(device, 'run_unknown', { exitCode: 0 })).status, 404);
      assert.equal((await report(device, started.body.id, { exitCode: 'zero' })).status, 400);
      assert.equal((await report(device, started.body.id, { exitCode: 0, output: '***' })).status, 400, 'output that is not base64');
      assert.equal((await request(server.url, 'POST', `/api/devices/self/action-runs/${started.body.id}/result`, { ...admin(), body: { exitCode: 0 } })).status, 403);
      await simulator.close();
    });

    it('queues runs for an offline device and sends them in order when it connects; refuses past actionQueueSize (429)', async () => {
      const device = await runner('actions-5');
      const ids: string[] = [];
      for (const action of ['reboot', 'logs', 'reboot']) {
        const started = await start(device.id, action);
        assert.equal(started.status, 202);
        ids.push(started.body.id);
      }
      const full = await start(device.id, 'logs');
      assert.equal(full.status, 429);
      assert.equal(full.body.error.code, 'rate_limited');
      assert.equal((await request(server.url, 'GET', `${base(device.id)}/action-runs`, admin())).body.items.length, 3, 'the refused run was not stored');

      const sent: string[] = [];
      const { simulator } = await connectDevice(server, server, org, device, {
        onRunAction(params) {
          sent.push(String(params.runId));
          return { result: {} };
        },
      });
      await eventually(() => sent.length === 3, 5000, 'the queued runs');
      assert.deepEqual(sent, ids);
      for (const id of ids) assert.equal((await runOf(device.id, id)).status, 'sent');
      await simulator.close();
    });

    it('cancels a pending run only, and times out a sent run without a result', async () => {
      const device = await runner('actions-6');
      const started = await start(device.id, 'reboot');
      const cancelled = await request(server.url, 'POST', `${base(device.id)}/action-runs/${started.body.id}/cancel`, admin());
      assert.equal(cancelled.status, 200);
      assert.equal(cancelled.body.status, 'cancelled');
      assert.equal((await request(server.url, 'POST', `${base(device.id)}/action-runs/${started.body.id}/cancel`, admin())).status, 409);

      const { simulator } = await connectDevice(server, server, org, device, { onRunAction: () => ({ result: {} }) });
      const late = await start(device.id, 'logs');
      await simulator.request('Fleetd.RunAction');
      assert.deepEqual(simulator.requests('Fleetd.RunAction').map((r) => r.params!.runId), [late.body.id], 'the cancelled run was never sent');
      await eventually(async () => (await runOf(device.id, late.body.id)).status === 'sent', 5000, 'sent');
      assert.equal((await request(server.url, 'POST', `${base(device.id)}/action-runs/${late.body.id}/cancel`, admin())).status, 409, 'a sent run is not cancelled');
      await eventually(async () => (await runOf(device.id, late.body.id)).status === 'timeout', 8000, 'the timeout');
      assert.equal((await report(device, late.body.id, { exitCode: 0 })).status, 409, 'a late result changes nothing');
      await simulator.close();
    });

    it('refuses runs by role, organization, capability and action', async () => {
      const device = await runner('actions-7');
      const viewer = await memberWithRole(server, org, 'actions-viewer@example.com', 'viewer');
      assert.equal((await start(device.id, 'reboot', viewer.token)).status, 403);
      assert.equal((await request(server.url, 'GET', `${base(device.id)}/action-runs`, { token: viewer.token })).status, 200, 'viewers read the log');
      const operator = await memberWithRole(server, org, 'actions-operator@example.com', 'operator');
      assert.equal((await start(device.id, 'reboot', operator.token)).status, 202);

      const elsewhere = await request(server.url, 'POST', '/api/orgs', { ...admin(), body: { slug: 'actions-elsewhere', name: 'Elsewhere' } });
      const outsider = await memberWithRole(server, elsewhere.body.id, 'actions-outsider@example.com', 'admin');
      assert.equal((await start(device.id, 'reboot', outsider.token)).status, 404);
      assert.equal((await request(server.url, 'GET', `${base(device.id)}/actions`, { token: outsider.token })).status, 404);
      const other = await runner('actions-8');
      assert.equal((await request(server.url, 'GET', `${base(device.id)}/action-runs`, { token: other.key })).status, 404, "another device's log");
      assert.equal((await start(device.id, 'reboot', other.key)).status, 404, 'devices run nothing');

      const revoked = await request(server.url, 'POST', `/api/orgs/${org}/api-keys`, { ...admin(), body: { name: 'actions operator key', role: 'operator' } });
      await request(server.url, 'DELETE', `/api/orgs/${org}/api-keys/${revoked.body.id}`, admin());
      assert.equal((await start(device.id, 'reboot', revoked.body.key)).status, 401);
      assert.equal((await request(server.url, 'POST', `${base(device.id)}/action-runs/run_unknown/cancel`, admin())).status, 404);
      assert.equal((await start(device.id, 'format-disk')).status, 404, 'an action the device does not offer');
      assert.equal((await start(device.id, 'bad%20id')).status, 400, 'not an action id at all');
      const plain = await runner('actions-9', { shell: true });
      const noActions = await start(plain.id, 'reboot');
      assert.equal(noActions.status, 409);
      assert.equal((await request(server.url, 'GET', `${base(plain.id)}/action-runs`, admin())).body.items.length, 0);
    });
  });
}
