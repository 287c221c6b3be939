import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { systemActor } from '../../../src/services/actor.ts';
import { backends } from '../../helpers/backends.ts';
import { request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { RdfmDevice, RdfmSocket } from './simulator.ts';

const rfc822Shape = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** The whole life of an unchanged RDFM device against fleetd, as /work/shared/protocols/rdfm.md describes it. */
for (const backend of await backends()) {
  describe(`RDFM device flow [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    let device: RdfmDevice;
    let deviceId: string;
    let socket: RdfmSocket;

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off' });
      org = server.admin.orgId;
      device = new RdfmDevice(server.url, '00:11:22:33:44:55');
    });
    after(async () => {
      socket?.close();
      await server?.close();
    });

    const admin = (method: string, path: string, body?: unknown) => request(server.url, method, path, { token: server.admin.token, body });

    it('waits for admission (401), then gets a token once an admin accepts it', async () => {
      assert.deepEqual(await device.auth(), { status: 401, body: { error: 'device unauthorized' } });
      const pending = await admin('GET', '/api/pending-devices');
      const entry = pending.body.items.find((p: any) => p.externalId === device.mac);
      assert.equal(entry.endpoint, 'rdfm');
      assert.match(entry.keyFingerprint, /^SHA256:/);
      const accepted = await admin('POST', `/api/pending-devices/${entry.id}/accept`, { org: 'default' });
      assert.equal(accepted.status, 201);
      deviceId = accepted.body.id;

      const reply = await device.auth();
      assert.equal(reply.status, 200);
      assert.equal(typeof reply.body.token, 'string');
      assert.ok(Number.isInteger(reply.body.expires) && reply.body.expires > 0);
      const shown = await admin('GET', `/api/orgs/${org}/devices/${deviceId}`);
      assert.equal(shown.body.externalId, device.mac);
      assert.equal(shown.body.firmware, 'v1');
      assert.equal(shown.body.model, 'board-a');
      assert.equal(shown.body.metadata['rdfm.hardware.macaddr'], device.mac);
    });

    it('a known device replaces its metadata when it authenticates', async () => {
      device.metadata['rdfm.software.version'] = 'v1.1';
      assert.equal((await device.auth()).status, 200);
      const shown = await admin('GET', `/api/orgs/${org}/devices/${deviceId}`);
      assert.equal(shown.body.firmware, 'v1.1');
      assert.equal(shown.body.metadata['rdfm.software.version'], 'v1.1');
      device.metadata['rdfm.software.version'] = 'v1';
      assert.equal((await device.auth()).status, 200);
    });

    it('checks for updates: 204 without a policy, then the package its group targets, downloadable', async () => {
      assert.equal((await device.updateCheck()).status, 204);
      const content = Buffer.from('firmware v2 for board-a');
      const pkg = await server.services.packages.upload(systemActor, org, { version: 'v2', deviceType: 'board-a' }, Readable.from([content]));
      const group = await admin('POST', `/api/orgs/${org}/groups`, { name: 'rdfm boards' });
      assert.equal((await admin('POST', `/api/orgs/${org}/groups/${group.body.id}/members`, { deviceIds: [deviceId] })).status < 300, true);
      assert.equal((await admin('PUT', `/api/orgs/${org}/groups/${group.body.id}/update-policy`, { policy: 'exact_match', targetVersion: 'v2' })).status, 200);
      assert.equal((await admin('PUT', `/api/orgs/${org}/groups/${group.body.id}/packages`, { packageIds: [pkg.id] })).status, 200);

      const offer = await device.updateCheck();
      assert.equal(offer.status, 200);
      assert.deepEqual(Object.keys(offer.body).sort(), ['created', 'id', 'sha256', 'uri']);
      assert.ok(Number.isSafeInteger(offer.body.id) && offer.body.id > 0);
      assert.match(offer.body.created, rfc822Shape);
      assert.equal(offer.body.sha256, pkg.sha256);
      const again = await device.updateCheck();
      assert.equal(again.body.id, offer.body.id, 'the integer id is stable');
      const download = await fetch(offer.body.uri);
      assert.equal(download.status, 200);
      const bytes = Buffer.from(await download.arrayBuffer());
      assert.equal(createHash('sha256').update(bytes).digest('hex'), offer.body.sha256);
    });

    it('keeps log batches with their RFC 822 device timestamps', async () => {
      const reply = await device.post('/api/v1/logs', {
        batch: [
          { device_timestamp: 'Wed, 02 Oct 2002 15:00:00 -0000', name: 'CPU', entry: '0.123' },
          { device_timestamp: 'Wed, 02 Oct 2002 17:00:00 +0200', name: 'MEM', entry: '42' },
        ],
      });
      assert.deepEqual(reply, { status: 200, body: {} });
      const rows = await server.services.store.db.selectFrom('device_logs').selectAll().where('device_id', '=', deviceId).orderBy('name').execute();
      assert.deepEqual(
        rows.map((r) => [r.name, r.entry, r.at, r.device_timestamp]),
        [
          ['CPU', '0.123', '2002-10-02T15:00:00.000Z', 'Wed, 02 Oct 2002 15:00:00 -0000'],
          ['MEM', '42', '2002-10-02T15:00:00.000Z', 'Wed, 02 Oct 2002 17:00:00 +0200'],
        ],
      );
    });

    it('connects its WebSocket: alert, capabilities, actions', async () => {
      socket = await device.connect();
      assert.deepEqual(await socket.frame('alert'), { method: 'alert', alert: { message: 'connected' } });
      socket.send({ method: 'capability_report', capabilities: { shell: true, action: true, filesystem: false } });
      await socket.frame('action_list_query');
      socket.send({ method: 'action_list_update', actions: [{ action_id: 'uptime', action_name: 'Uptime', description: 'How long it runs', command: ['uptime'], timeout: 5.0 }] });
      let listed: any;
      for (let i = 0; i < 100 && !listed?.body?.actions?.length; i++) {
        listed = await admin('GET', `/api/orgs/${org}/devices/${deviceId}/actions`);
        if (!listed.body.actions?.length) await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(listed.body.actions.map((a: any) => [a.id, a.name, a.description]), [['uptime', 'Uptime', 'How long it runs']]);
      const shown = await admin('GET', `/api/orgs/${org}/devices/${deviceId}`);
      assert.equal(shown.body.online, true);
    });

    it('runs an action an operator asks for through fleetd', async () => {
      const run = await admin('POST', `/api/orgs/${org}/devices/${deviceId}/actions/uptime/runs`);
      assert.equal(run.status, 202);
      const exec = await socket.frame('action_exec');
      assert.deepEqual(exec, { method: 'action_exec', execution_id: run.body.id, action_id: 'uptime' });
      socket.send({ method: 'action_exec_control', execution_id: run.body.id, status: 'ok' });
      socket.send({ method: 'action_exec_result', execution_id: run.body.id, status_code: 0, output: Buffer.from('up 3 days').toString('base64') });
      let done: any;
      for (let i = 0; i < 100 && done?.body?.status !== 'succeeded'; i++) {
        done = await admin('GET', `/api/orgs/${org}/devices/${deviceId}/action-runs/${run.body.id}`);
        if (done.body.status !== 'succeeded') await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(done.body.status, 'succeeded');
      assert.equal(done.body.exitCode, 0);
      assert.equal(Buffer.from(done.body.output, 'base64').toString(), 'up 3 days');
    });

    it('relays a shell an operator opens: shell_attach, the dial-back, bytes both ways', async () => {
      const operator = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/orgs/${org}/devices/${deviceId}/shell`, { headers: { authorization: `Bearer ${server.admin.token}` } });
      const fromDevice: Buffer[] = [];
      operator.on('message', (data, binary) => binary && fromDevice.push(data as Buffer));
      await new Promise((resolve, reject) => operator.once('open', resolve).once('error', reject));
      const attach = await socket.frame('shell_attach');
      assert.equal(attach.mac_addr, device.mac);
      assert.match(attach.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      const shell = await device.connect(`/api/v1/devices/${encodeURIComponent(device.mac)}/shell/attach/${attach.uuid}`);
      operator.send(Buffer.from('uptime\n'));
      await shell.until(() => Buffer.concat(shell.binary).toString() === 'uptime\n', 'the operator’s bytes');
      shell.send(Buffer.from(' 12:00 up 3 days\n'));
      await socket.until(() => Buffer.concat(fromDevice).toString() === ' 12:00 up 3 days\n', 'the device’s bytes');
      const operatorClosed = new Promise<number>((resolve) => operator.once('close', (code) => resolve(code)));
      shell.close();
      assert.equal(await operatorClosed, 1000);
    });

    it('reports update progress and its new version onto fleetd’s update', async () => {
      socket.send({ method: 'update_progress', progress: 40 });
      const status = async () => (await admin('GET', `/api/orgs/${org}/devices/${deviceId}/update`)).body;
      for (let i = 0; i < 100 && (await status()).status !== 'downloading'; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await status()).progress, 40);
      socket.send({ method: 'update_version', version: 'v2' });
      for (let i = 0; i < 100 && (await status()).status !== 'success'; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal((await status()).status, 'success');
      const shown = await admin('GET', `/api/orgs/${org}/devices/${deviceId}`);
      assert.equal(shown.body.firmware, 'v2');
      assert.equal(shown.body.metadata['rdfm.software.version'], 'v2');
    });

    it('is told of updates by an alert, and gets the runs queued while it was away when it reconnects', async () => {
      const group = (await admin('GET', `/api/orgs/${org}/groups`)).body.items[0];
      assert.equal((await admin('PUT', `/api/orgs/${org}/groups/${group.id}/update-policy`, { policy: 'exact_match', targetVersion: 'v3' })).status, 200);
      await socket.until(() => socket.frames.some((f) => f.method === 'alert' && f.alert.message === 'update available'), 'the update notice');

      socket.close();
      await socket.closed;
      for (let i = 0; i < 100 && (await admin('GET', `/api/orgs/${org}/devices/${deviceId}`)).body.online; i++) await new Promise((r) => setTimeout(r, 20));
      const run = await admin('POST', `/api/orgs/${org}/devices/${deviceId}/actions/uptime/runs`);
      assert.equal(run.body.status, 'pending');
      socket = await device.connect();
      assert.deepEqual(await socket.frame('action_exec'), { method: 'action_exec', execution_id: run.body.id, action_id: 'uptime' });
      assert.equal(socket.frames[0].method, 'alert', 'the alert comes first');
    });
  });
}
