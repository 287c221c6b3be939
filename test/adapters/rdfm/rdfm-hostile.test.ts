import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { backends } from '../../helpers/backends.ts';
import { request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { refusal } from '../../hub/websocket-harness.ts';
import { sessionToUuid } from '../../../src/adapters/rdfm/device/shell-uuid.ts';
import { RdfmDevice } from './simulator.ts';

/** What RDFM's device API must withstand: forged or malformed authentications, bad tokens, hostile frames. */
for (const backend of await backends()) {
  describe(`RDFM device API, hostile input [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let wsBase: string;
    const admin = (method: string, path: string, body?: unknown) => request(server.url, method, path, { token: server.admin.token, body });

    /** A device an admin accepted, with a token. */
    async function admitted(mac: string): Promise<{ device: RdfmDevice; id: string }> {
      const device = new RdfmDevice(server.url, mac);
      assert.equal((await device.auth()).status, 401);
      const pending = await admin('GET', '/api/pending-devices');
      const entry = pending.body.items.find((p: any) => p.externalId === mac);
      const accepted = await admin('POST', `/api/pending-devices/${entry.id}/accept`, { org: 'default' });
      assert.equal((await device.auth()).status, 200);
      return { device, id: accepted.body.id };
    }

    /** Waits until the device's socket is linked to the hub (its alert goes out just before). */
    async function linked(deviceId: string): Promise<void> {
      for (let i = 0; i < 200 && !server.server.hub.links.isLocal(deviceId); i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(server.server.hub.links.isLocal(deviceId), 'the device is linked');
    }

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off', wsMaxFrame: '4096' });
      wsBase = server.url.replace(/^http/, 'ws');
    });
    after(() => server?.close());

    describe('authentication', () => {
      it('refuses a missing, malformed or mismatched signature with 400, before reading the body', async () => {
        const device = new RdfmDevice(server.url, 'aa:00:00:00:00:01');
        const body = device.authBody();
        assert.deepEqual(await device.postAuth(body, undefined), { status: 400, body: { error: 'missing device signature header' } });
        const failed = { status: 400, body: { error: 'signature verification failed' } };
        assert.deepEqual(await device.postAuth(body, 'not base64!'), failed);
        assert.deepEqual(await device.postAuth(body, Buffer.alloc(256, 1).toString('base64')), failed);
        const tampered = body.replace('board-a', 'board-b');
        assert.deepEqual(await device.postAuth(tampered, device.signature(body)), failed);
        const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
        assert.deepEqual(await device.postAuth(body, device.signature(body, other)), failed);
        const notPem = device.authBody({ public_key: 'hello' });
        assert.deepEqual(await device.postAuth(notPem, device.signature(notPem)), failed);
        assert.deepEqual(await device.postAuth('{not json', device.signature('{not json')), failed);
        assert.deepEqual(await device.postAuth('plain text', device.signature('plain text'), 'text/plain'), failed);
        const pending = await admin('GET', '/api/pending-devices');
        assert.equal(pending.body.items.some((p: any) => p.externalId === device.mac), false, 'nothing waits');
      });

      it('refuses signed bodies that break the schema with 400', async () => {
        const device = new RdfmDevice(server.url, 'aa:00:00:00:00:02');
        for (const overrides of [
          { metadata: { 'rdfm.software.version': 'v1', 'rdfm.hardware.devtype': 'x' } },
          { metadata: { 'rdfm.hardware.macaddr': device.mac } },
          { metadata: 'flat' },
          { metadata: { 'rdfm.software.version': ['v1'], 'rdfm.hardware.devtype': 'x', 'rdfm.hardware.macaddr': device.mac } },
          { metadata: { 'rdfm.software.version': 'v1', 'rdfm.hardware.devtype': 'x', 'rdfm.hardware.macaddr': device.mac, ['k'.repeat(201)]: 'v' } },
          { timestamp: 'now' },
          { timestamp: undefined },
        ]) {
          const body = device.authBody(overrides);
          const reply = await device.postAuth(body, device.signature(body));
          assert.equal(reply.status, 400, JSON.stringify(overrides));
          assert.match(reply.body.error, /^schema validation failed: /);
        }
        const badMac = device.authBody({ metadata: { 'rdfm.software.version': 'v1', 'rdfm.hardware.devtype': 'x', 'rdfm.hardware.macaddr': 'a/b' } });
        assert.equal((await device.postAuth(badMac, device.signature(badMac))).status, 400);
      });

      it('refuses another key for a known MAC (401), and the device keeps its own', async () => {
        const { device } = await admitted('aa:00:00:00:00:03');
        const impostor = new RdfmDevice(server.url, device.mac);
        assert.deepEqual(await impostor.auth(), { status: 401, body: { error: 'device unauthorized' } });
        assert.equal((await device.auth()).status, 200);
      });

      it('refuses a replayed or stale authentication (401)', async () => {
        const { device } = await admitted('aa:00:00:00:00:04');
        const body = device.authBody();
        assert.equal((await device.postAuth(body, device.signature(body))).status, 200);
        assert.deepEqual(await device.postAuth(body, device.signature(body)), { status: 401, body: { error: 'device unauthorized' } });
        const stale = device.authBody({ timestamp: Math.floor(Date.now() / 1000) - 3600 });
        assert.equal((await device.postAuth(stale, device.signature(stale))).status, 401);
      });
    });

    describe('device routes', () => {
      it('refuse a missing or bad token (401) and a person’s token (403)', async () => {
        const { device } = await admitted('aa:00:00:00:00:05');
        const check = { ...device.metadata, 'rdfm.hardware.macaddr': device.mac };
        for (const token of ['', 'Bearer token=', 'Bearer token=garbage', 'Basic abc']) {
          const reply = await device.post('/api/v1/update/check', check, token);
          assert.equal(reply.status, 401, token);
          assert.equal(typeof reply.body.error, 'string');
        }
        assert.equal((await device.post('/api/v1/update/check', check, `Bearer token=${server.admin.token}`)).status, 403);
        assert.equal((await device.post('/api/v1/logs', { batch: [] }, 'Bearer token=garbage')).status, 401);
      });

      it('refuse malformed update checks and log batches with 400, storing nothing', async () => {
        const { device, id } = await admitted('aa:00:00:00:00:06');
        assert.equal((await device.post('/api/v1/update/check', { 'rdfm.software.version': 'v1' })).status, 400);
        assert.equal((await device.post('/api/v1/update/check', 'not json')).status, 400);
        assert.equal((await device.post('/api/v1/update/check', [1, 2])).status, 400);
        for (const batch of [
          [{ device_timestamp: 'yesterday', name: 'CPU', entry: '1' }],
          [{ device_timestamp: 'Wed, 02 Oct 2002 15:00:00 -0000', name: 'CPU', entry: '1' }, { device_timestamp: '2002-10-02', name: 'CPU', entry: '2' }],
          [{ device_timestamp: 'Wed, 02 Oct 2002 15:00:00 -0000', name: 'CPU' }],
          'batch',
        ]) {
          const reply = await device.post('/api/v1/logs', { batch });
          assert.equal(reply.status, 400, JSON.stringify(batch));
          assert.equal(typeof reply.body.error, 'string');
        }
        const rows = await server.services.store.db.selectFrom('device_logs').select('id').where('device_id', '=', id).execute();
        assert.equal(rows.length, 0);
      });
    });

    describe('the device WebSocket', () => {
      it('refuses a bad token before the upgrade (401)', async () => {
        for (const authorization of ['Bearer token=garbage', `Bearer token=${server.admin.token}`]) {
          const refused = await refusal(`${wsBase}/api/v1/devices/ws`, [], { headers: { authorization } });
          assert.equal(refused.status, 401);
        }
        assert.equal((await refusal(`${wsBase}/api/v1/devices/ws`)).status, 401);
      });

      it('closes on binary frames (1003), bad JSON, unknown methods and malformed frames (4001), oversized frames (1009)', async () => {
        const { device, id } = await admitted('aa:00:00:00:00:07');
        const cases: Array<[unknown, number]> = [
          [Buffer.from([1, 2, 3]), 1003],
          ['{not json', 4001],
          ['[1]', 4001],
          [{ method: 'format_disk' }, 4001],
          [{ nomethod: true }, 4001],
          [{ method: 'capability_report', capabilities: ['shell'] }, 4001],
          [{ method: 'capability_report', capabilities: { 'bad name!': true } }, 4001],
          [{ method: 'update_progress', progress: 101 }, 4001],
          [{ method: 'action_exec_result', execution_id: 'act_nothing', status_code: 0, output: '' }, 4001],
          [{ method: 'action_exec_control', execution_id: 'act_nothing', status: 'ok' }, 4001],
          [{ method: 'action_list_update', actions: [{ action_id: 'a', action_name: 'A' }, { action_id: 'a', action_name: 'B' }] }, 4001],
          ['x'.repeat(5000), 1009],
        ];
        for (const [frame, code] of cases) {
          const socket = await device.connect();
          await socket.frame('alert');
          await linked(id);
          socket.send(frame);
          assert.equal((await socket.closed).code, code, typeof frame === 'string' ? frame.slice(0, 40) : JSON.stringify(frame));
          // The next connection finds the device offline again.
          for (let i = 0; i < 100; i++) {
            const row = await server.services.store.db.selectFrom('devices').select('connected_node').where('external_id', '=', device.mac).executeTakeFirstOrThrow();
            if (row.connected_node === null && !server.server.hub.links.isLocal(id)) break;
            await new Promise((r) => setTimeout(r, 10));
          }
        }
      });

      it('closes a second connection of the same device with 4002 and keeps the first', async () => {
        const { device, id } = await admitted('aa:00:00:00:00:08');
        const first = await device.connect();
        await first.frame('alert');
        await linked(id);
        const second = await device.connect();
        assert.equal((await second.closed).code, 4002);
        first.send({ method: 'capability_report', capabilities: { action: true } });
        await first.frame('action_list_query');
        first.close();
        await first.closed;
      });

      it('refuses a call for a capability the device lacks', async () => {
        const { device, id } = await admitted('aa:00:00:00:00:09');
        const socket = await device.connect();
        await socket.frame('alert');
        socket.send({ method: 'capability_report', capabilities: { shell: false } });
        const { links } = server.server.hub;
        await linked(id);
        await assert.rejects(links.call(id, 'Fleetd.ShellAttach', { sessionId: 'shl_00000000000000000000000000' }), (error: any) => error.code === 'device_error' && error.details.code === 4003);
        await assert.rejects(links.call(id, 'Fleetd.RunAction', { runId: 'act_x', actionId: 'x' }), (error: any) => error.code === 'device_error');
        await assert.rejects(links.call(id, 'Shelly.Reboot', {}), (error: any) => error.code === 'device_error');
        assert.equal(socket.frames.length, 1, 'nothing was sent');
        socket.close();
        await socket.closed;
      });
    });

    describe('the shell dial-back', () => {
      it('refuses another device’s session, an unknown or malformed UUID, and a bad token', async () => {
        const owner = await admitted('aa:00:00:00:00:10');
        const other = await admitted('aa:00:00:00:00:11');
        const ownerSocket = await owner.device.connect();
        await ownerSocket.frame('alert');
        ownerSocket.send({ method: 'capability_report', capabilities: { shell: true } });
        for (let i = 0; i < 100; i++) {
          const row = await server.services.store.db.selectFrom('devices').select('capabilities').where('id', '=', owner.id).executeTakeFirstOrThrow();
          if (JSON.parse(row.capabilities).shell) break;
          await new Promise((r) => setTimeout(r, 10));
        }
        const operator = new WebSocket(`${wsBase}/api/orgs/default/devices/${owner.id}/shell`, { headers: { authorization: `Bearer ${server.admin.token}` } });
        await new Promise((resolve, reject) => operator.once('open', resolve).once('error', reject));
        const attach = await ownerSocket.frame('shell_attach');
        const path = (mac: string, uuid: string) => `${wsBase}/api/v1/devices/${encodeURIComponent(mac)}/shell/attach/${uuid}`;
        const as = (device: RdfmDevice) => ({ headers: { authorization: device.authorization } });

        assert.equal((await refusal(path(other.device.mac, attach.uuid), [], as(other.device))).status, 403, 'another device’s session');
        assert.equal((await refusal(path(owner.device.mac, attach.uuid), [], as(other.device))).status, 403, 'another device’s MAC');
        assert.equal((await refusal(path(owner.device.mac, sessionToUuid('shl_00000000000000000000000000')), [], as(owner.device))).status, 404);
        assert.equal((await refusal(path(owner.device.mac, 'not-a-uuid'), [], as(owner.device))).status, 404);
        assert.equal((await refusal(path(owner.device.mac, '%E0%A4%A'), [], as(owner.device))).status, 404);
        assert.equal((await refusal(path(owner.device.mac, attach.uuid), [], { headers: { authorization: 'Bearer token=garbage' } })).status, 401);

        const shell = await owner.device.connect(`/api/v1/devices/${encodeURIComponent(owner.device.mac)}/shell/attach/${attach.uuid}`);
        assert.equal((await refusal(path(owner.device.mac, attach.uuid), [], as(owner.device))).status, 409, 'a session is taken once');
        shell.close();
        operator.close();
        ownerSocket.close();
        await ownerSocket.closed;
      });
    });
  });
}
