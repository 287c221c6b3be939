import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends } from '../../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../../helpers/server.ts';
import type { RdfmDevice, RdfmSocket } from './simulator.ts';
import { admitRdfmDevice, connectRdfmDevice, eventually, otherOrganization, rdfmCall } from './remote-fixture.ts';

const uptime = { action_id: 'uptime', action_name: 'Uptime', description: 'How long it runs', command: ['uptime', '-p'], timeout: 5.5 };
const b64 = (text: string) => Buffer.from(text).toString('base64');

/** RDFM's action routes and permissions, driven as rdfm-mgmt and RDFM's frontend call them, against a simulated RDFM device. */
for (const backend of await backends()) {
  describe(`RDFM management: actions and permissions [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let device: RdfmDevice;
    let deviceId: string;
    let socket: RdfmSocket;
    let viewer: string;
    let operator: string;
    let other: { orgId: string; key: string };
    const mac = '02:00:00:00:00:01';
    const base = `/api/v2/devices/${mac}/action`;
    const admin = (method: string, path: string, body?: unknown) => rdfmCall(server, server.admin.token, method, path, body);
    /** fleetd's own view of the device's runs. */
    const runs = async () => (await request(server.url, 'GET', `/api/orgs/${server.admin.orgId}/devices/${deviceId}/action-runs?limit=500`, { token: server.admin.token })).body.items as any[];

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off', actionTimeout: '2' });
      ({ device, deviceId } = await admitRdfmDevice(server, mac));
      socket = await connectRdfmDevice(device, { shell: false, action: true }, [uptime, { action_id: 'fail', action_name: 'Fail', description: '', command: ['false'], timeout: 1 }]);
      await eventually(() => admin('GET', `${base}/list`), (r) => r.body.length === 2, 'the advertised actions');
      viewer = (await memberWithRole(server, server.admin.orgId, 'viewer@example.com', 'viewer')).token;
      operator = (await memberWithRole(server, server.admin.orgId, 'operator@example.com', 'operator')).token;
      other = await otherOrganization(server, 'other');
    });
    after(async () => {
      socket?.close();
      await server?.close();
    });

    it('lists the actions the device advertised, with their command and timeout', async () => {
      const listed = await rdfmCall(server, viewer, 'GET', `${base}/list`);
      assert.equal(listed.status, 200);
      assert.deepEqual(listed.body, [{ action_id: 'fail', action_name: 'Fail', description: '', command: ['false'], timeout: 1 }, uptime]);
    });

    it('runs an action on a connected device and answers with its exit code and output', async () => {
      const pending = rdfmCall(server, operator, 'GET', `${base}/exec/uptime`);
      const exec = await socket.frame('action_exec');
      assert.equal(exec.action_id, 'uptime');
      socket.send({ method: 'action_exec_control', execution_id: exec.execution_id, status: 'ok' });
      socket.send({ method: 'action_exec_result', execution_id: exec.execution_id, status_code: 0, output: b64('up 3 days') });
      assert.deepEqual(await pending, { status: 200, headers: (await pending).headers, body: { status_code: 0, output: b64('up 3 days') } });
    });

    it('answers a failing action with its exit code, and a run without a result with 504', async () => {
      socket.frames.length = 0;
      const failing = rdfmCall(server, operator, 'GET', `${base}/exec/fail`);
      const exec = await socket.frame('action_exec');
      socket.send({ method: 'action_exec_result', execution_id: exec.execution_id, status_code: 3, output: '' });
      const reply = await failing;
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.body, { status_code: 3, output: '' });

      socket.frames.length = 0;
      const silent = rdfmCall(server, operator, 'GET', `${base}/exec/uptime`);
      await socket.frame('action_exec');
      const timedOut = await silent;
      assert.equal(timedOut.status, 504);
      assert.match(timedOut.body.error, /no result within 2 s/);
    });

    it('lists the action log with RDFM statuses', async () => {
      const log = await rdfmCall(server, viewer, 'GET', `${base}/log`);
      assert.equal(log.status, 200);
      assert.deepEqual(
        log.body.map((entry: any) => [entry.action, entry.status, entry.download_url]),
        [
          ['uptime', '0', null],
          ['fail', '3', null],
          ['uptime', 'error', null],
        ],
      );
      for (const entry of log.body) {
        assert.match(entry.id, /^run_/);
        assert.ok(!Number.isNaN(Date.parse(entry.created)) && entry.created.includes('T'), 'created is ISO 8601');
      }
    });

    it('queues a run for an offline device (202) and sends it when the device connects', async () => {
      socket.close();
      await socket.closed;
      await eventually(() => request(server.url, 'GET', `/api/orgs/${server.admin.orgId}/devices/${deviceId}`, { token: server.admin.token }), (r) => r.body.online === false, 'the device offline');
      const queued = await rdfmCall(server, operator, 'GET', `${base}/exec/uptime`);
      assert.deepEqual([queued.status, queued.body], [202, {}]);
      const log = await rdfmCall(server, viewer, 'GET', `${base}/log`);
      const entry = log.body.at(-1);
      assert.equal(entry.status, 'pending');

      socket = await device.connect();
      socket.send({ method: 'capability_report', capabilities: { shell: false, action: true } });
      const exec = await socket.frame('action_exec');
      assert.equal(exec.execution_id, entry.id);
      socket.send({ method: 'action_exec_result', execution_id: exec.execution_id, status_code: 0, output: b64('late') });
      await eventually(() => rdfmCall(server, viewer, 'GET', `${base}/log`), (r) => r.body.at(-1).status === '0', 'the late result');
    });

    it('cancels pending runs, removes runs, clears ended ones', async () => {
      socket.close();
      await socket.closed;
      await eventually(() => request(server.url, 'GET', `/api/orgs/${server.admin.orgId}/devices/${deviceId}`, { token: server.admin.token }), (r) => r.body.online === false, 'the device offline');
      for (let i = 0; i < 2; i++) assert.equal((await rdfmCall(server, operator, 'GET', `${base}/exec/uptime`)).status, 202);
      assert.deepEqual(await rdfmCall(server, operator, 'DELETE', `${base}/pending`).then((r) => [r.status, r.body]), [200, {}]);
      const cancelled = (await runs()).filter((run) => run.status === 'cancelled');
      assert.equal(cancelled.length, 2);

      const [first] = (await rdfmCall(server, viewer, 'GET', `${base}/log`)).body;
      assert.deepEqual(await rdfmCall(server, operator, 'POST', `${base}/remove`, { actions: [first.id] }).then((r) => [r.status, r.body]), [200, {}]);
      assert.ok(!(await runs()).some((run) => run.id === first.id));

      assert.deepEqual(await rdfmCall(server, operator, 'DELETE', `${base}/log`).then((r) => [r.status, r.body]), [200, {}]);
      assert.deepEqual(await runs(), []);
      assert.deepEqual((await rdfmCall(server, viewer, 'GET', `${base}/log`)).body, []);
    });

    it('refuses an unknown action (404) and leaves no run', async () => {
      const unknown = await rdfmCall(server, operator, 'GET', `${base}/exec/nonexistent`);
      assert.equal(unknown.status, 404);
      assert.equal(typeof unknown.body.error, 'string');
      const huge = await rdfmCall(server, operator, 'GET', `${base}/exec/${'a'.repeat(5000)}`);
      assert.ok(huge.status >= 400 && huge.status < 500, `huge action id: ${huge.status}`);
      const odd = await rdfmCall(server, operator, 'GET', `${base}/exec/${encodeURIComponent('../../etc/passwd')}`);
      assert.equal(odd.status, 404);
      assert.deepEqual(await runs(), []);
    });

    it('refuses a viewer what changes runs (403), and keeps them', async () => {
      for (const [method, path] of [
        ['GET', `${base}/exec/uptime`],
        ['DELETE', `${base}/log`],
        ['DELETE', `${base}/pending`],
        ['POST', `${base}/remove`],
      ] as const) {
        const reply = await rdfmCall(server, viewer, method, path, method === 'POST' ? { actions: [] } : undefined);
        assert.equal(reply.status, 403, `${method} ${path}`);
        assert.equal(typeof reply.body.error, 'string');
      }
      assert.deepEqual(await runs(), []);
    });

    it('hides the device from another organization’s API key (404) and refuses a missing token (401)', async () => {
      for (const [method, path] of [
        ['GET', `${base}/list`],
        ['GET', `${base}/exec/uptime`],
        ['GET', `${base}/log`],
        ['DELETE', `${base}/log`],
        ['DELETE', `${base}/pending`],
        ['POST', `${base}/remove`],
      ] as const) {
        const body = method === 'POST' ? { actions: [] } : undefined;
        const foreign = await rdfmCall(server, other.key, method, path, body);
        assert.equal(foreign.status, 404, `${method} ${path}`);
        assert.deepEqual(foreign.body, { error: 'Device not found' });
        const anonymous = await rdfmCall(server, undefined, method, path, body);
        assert.equal(anonymous.status, 401, `${method} ${path}`);
        assert.equal(typeof anonymous.body.error, 'string');
      }
      assert.equal((await rdfmCall(server, server.admin.token, 'GET', '/api/v2/devices/ff:ff:ff:ff:ff:ff/action/list')).status, 404);
      const huge = await rdfmCall(server, server.admin.token, 'GET', `/api/v2/devices/${'f'.repeat(300)}/action/list`);
      assert.equal(huge.status, 400, JSON.stringify(huge.body));
      assert.deepEqual(await runs(), []);
    });

    it('refuses malformed remove bodies with 400 and names of other runs with 404, deleting nothing', async () => {
      socket = await device.connect();
      socket.send({ method: 'capability_report', capabilities: { shell: false, action: true } });
      await socket.frame('alert');
      socket.close();
      await socket.closed;
      await eventually(() => request(server.url, 'GET', `/api/orgs/${server.admin.orgId}/devices/${deviceId}`, { token: server.admin.token }), (r) => r.body.online === false, 'the device offline');
      assert.equal((await rdfmCall(server, operator, 'GET', `${base}/exec/uptime`)).status, 202);
      const [run] = await runs();
      for (const body of ['{"actions": [', '[]', '{"actions": "x"}', '{"actions": [1]}', '{"actions": [""]}', JSON.stringify({ actions: ['a'.repeat(65)] }), JSON.stringify({ actions: Array(1001).fill(run.id) })]) {
        const reply = await rdfmCall(server, operator, 'POST', `${base}/remove`, body);
        assert.equal(reply.status, 400, body.slice(0, 40));
        assert.equal(typeof reply.body.error, 'string');
      }
      const unknown = await rdfmCall(server, operator, 'POST', `${base}/remove`, { actions: [run.id, 'run_00000000000000000000000000'] });
      assert.equal(unknown.status, 404);
      assert.equal((await runs()).length, 1, 'nothing deleted');
    });

    it('answers /api/v1/permissions: none listed, none created or deleted (fleetd grants by role)', async () => {
      assert.deepEqual(await rdfmCall(server, viewer, 'GET', '/api/v1/permissions').then((r) => [r.status, r.body]), [200, []]);
      const create = await admin('POST', '/api/v1/permissions', { resource: 'device', resource_id: 1, user_id: 'u', permission: 'read' });
      assert.equal(create.status, 400);
      assert.match(create.body.error, /by role in the organization.*make the user a member/);
      assert.equal((await admin('DELETE', '/api/v1/permissions/1')).status, 400);
      assert.equal((await admin('GET', '/api/v1/permissions/1')).status, 404);
      assert.equal((await admin('POST', '/api/v1/permissions', '{"resource": ')).status, 400);
      assert.equal((await rdfmCall(server, viewer, 'POST', '/api/v1/permissions', {})).status, 403);
      assert.equal((await rdfmCall(server, viewer, 'DELETE', '/api/v1/permissions/1')).status, 403);
      assert.equal((await rdfmCall(server, undefined, 'GET', '/api/v1/permissions')).status, 401);
      assert.deepEqual(await rdfmCall(server, other.key, 'GET', '/api/v1/permissions').then((r) => [r.status, r.body]), [200, []]);
    });
  });
}
