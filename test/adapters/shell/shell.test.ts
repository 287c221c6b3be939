import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends } from '../../helpers/backends.ts';
import { login, memberWithRole, request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { eventually, refusal } from '../../hub/websocket-harness.ts';
import { RelayClient } from '../relay/harness.ts';
import { connectDevice, EchoShell, registerDevice, shellUrl, waitOnline, wsBase } from './harness.ts';

/** A remote shell through real sockets: operator ↔ fleetd ↔ the device dialing back. */

const binaryOf = (client: RelayClient) => Buffer.concat(client.received.filter((r) => r.binary).map((r) => r.data as Buffer));

for (const backend of await backends()) {
  describe(`remote shell [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    const open: Array<{ ws: { terminate(): void } }> = [];
    const operator = async (deviceId: string, token = server.admin.token) => {
      const client = await RelayClient.open(shellUrl(server, org, deviceId), token);
      open.push(client);
      return client;
    };
    const sessions = async (deviceId: string) => {
      const listed = await request(server.url, 'GET', `/api/orgs/${org}/shell-sessions?deviceId=${deviceId}`, { token: server.admin.token });
      assert.equal(listed.status, 200, JSON.stringify(listed.body));
      return listed.body.items as any[];
    };

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off', shellAttachTimeout: '3', shellIdleTimeout: '10' });
      org = server.admin.orgId;
    });
    after(async () => {
      for (const client of open) client.ws.terminate();
      await server?.close();
    });

    it('relays bytes both ways verbatim and resizes, then records and audits the session', async () => {
      const device = await registerDevice(server, org, 'shell-1');
      const { simulator, shells } = await connectDevice(server, server, org, device);
      const client = await operator(device.id);
      const bytes = Buffer.from([0x6c, 0x73, 0x0d, 0x00, 0xff, 0x1b, 0x5b, 0x41]);
      client.send(bytes);
      client.send(JSON.stringify({ type: 'resize', cols: 120, rows: 40 }));
      client.send(Buffer.from('echo hi\r'));
      const expected = Buffer.concat([bytes, Buffer.from('echo hi\r')]);
      await client.until(() => binaryOf(client).length >= expected.length, 'the echo');
      assert.deepEqual(binaryOf(client), expected);
      const [shell] = shells as [EchoShell];
      assert.deepEqual(shell.bytes, expected, 'the device got the bytes as sent');
      assert.deepEqual(shell.controls, [{ type: 'resize', cols: 120, rows: 40 }]);
      assert.equal((await simulator.request('Fleetd.ShellAttach')).params!.url, `${wsBase(server)}/api/devices/shell/${(await sessions(device.id))[0].id}`);

      // The device's exit status reaches the operator; closing the operator closes the device's end.
      shell.ws.send(JSON.stringify({ type: 'exit', code: 3, extra: 'dropped' }));
      await client.sees({ type: 'exit', code: 3 });
      client.close();
      assert.deepEqual(await shell.closed, { code: 1000, reason: 'operator closed the shell' });

      await eventually(async () => (await sessions(device.id))[0]?.status === 'closed', 5000, 'the session closed');
      const [session] = await sessions(device.id);
      assert.equal(session.openedBy.id, server.admin.userId);
      assert.equal(session.bytesToDevice, expected.length);
      assert.equal(session.bytesFromDevice, expected.length);
      assert.ok(session.attachedAt && session.closedAt);
      const audit = await request(server.url, 'GET', `/api/orgs/${org}/audit?targetId=${device.id}`, { token: server.admin.token });
      const shellEvents = (audit.body.items as any[]).filter((event) => event.action.startsWith('device.shell'));
      assert.deepEqual(shellEvents.map((event) => event.action), ['device.shell_open', 'device.shell_close']);
      const closed = shellEvents[1];
      assert.equal(closed.details.sessionId, session.id);
      assert.equal(closed.details.bytesToDevice, expected.length);
      assert.equal(typeof closed.details.durationMs, 'number');
      await simulator.close();
    });

    it('closes the operator when the device closes its end', async () => {
      const device = await registerDevice(server, org, 'shell-2');
      const { simulator, shells } = await connectDevice(server, server, org, device);
      const client = await operator(device.id);
      client.send(Buffer.from('x'));
      await client.until(() => binaryOf(client).length === 1, 'the echo');
      shells[0]!.ws.close(1000, 'exit');
      assert.deepEqual(await client.closed, { code: 1000, reason: 'device closed the shell' });
      await simulator.close();
    });

    it('ends a shell with no byte either way for shellIdleTimeout (4009), on both sides', async () => {
      const device = await registerDevice(server, org, 'shell-idle');
      const { simulator, shells } = await connectDevice(server, server, org, device);
      const client = await operator(device.id);
      client.send(Buffer.from('z'));
      await client.until(() => binaryOf(client).length === 1, 'the echo');
      const started = Date.now();
      assert.deepEqual(await client.closed, { code: 4009, reason: 'idle timeout' });
      assert.ok(Date.now() - started >= 9_000, 'not before the timeout');
      assert.deepEqual(await shells[0]!.closed, { code: 1000, reason: 'operator closed the shell' });
      await eventually(async () => (await sessions(device.id))[0]?.closeReason === 'idle timeout', 5000, 'the session closed');
      await simulator.close();
    });

    it('closes the operator with 4001 when the device does not dial back, or refuses', async () => {
      const silent = await registerDevice(server, org, 'shell-3');
      const quiet = await connectDevice(server, server, org, silent, { shell: 'ignore' });
      const waiting = await operator(silent.id);
      assert.deepEqual(await waiting.closed, { code: 4001, reason: 'device did not attach' });
      await eventually(async () => (await sessions(silent.id))[0]?.closeReason === 'device did not attach', 5000, 'the session closed');
      await quiet.simulator.close();

      const refusing = await registerDevice(server, org, 'shell-4');
      const no = await connectDevice(server, server, org, refusing, { shell: 'refuse' });
      const refused = await operator(refusing.id);
      const closed = await refused.closed;
      assert.equal(closed.code, 4001);
      assert.match(closed.reason, /^device did not attach: /);
      await no.simulator.close();
    });

    it('lets only the session’s own device attach', async () => {
      const owner = await registerDevice(server, org, 'shell-5');
      const other = await registerDevice(server, org, 'shell-6');
      const { simulator } = await connectDevice(server, server, org, owner, { shell: 'ignore' });
      const client = await operator(owner.id);
      const attach = await simulator.request('Fleetd.ShellAttach');
      const url = String(attach.params!.url);
      const byOther = await refusal(url, [], { headers: { authorization: `Bearer ${other.key}` } });
      assert.equal(byOther.status, 403);
      const byNobody = await refusal(url);
      assert.equal(byNobody.status, 401);
      const unknown = await refusal(url.replace(/shl_\w+$/, 'shl_00000000000000000000000000'), [], { headers: { authorization: `Bearer ${owner.key}` } });
      assert.equal(unknown.status, 404);
      const byOperator = await refusal(url, [], { headers: { authorization: `Bearer ${server.admin.token}` } });
      assert.equal(byOperator.status, 403, 'people do not attach as devices');
      const shell = await EchoShell.dial(url, owner.key);
      client.send(Buffer.from('y'));
      await client.until(() => binaryOf(client).length === 1, 'the echo');
      shell.ws.close();
      await client.closed;
      await simulator.close();
    });

    it('refuses before the upgrade: roles, other organizations, revoked keys, devices without shell, offline devices', async () => {
      const device = await registerDevice(server, org, 'shell-7');
      const { simulator } = await connectDevice(server, server, org, device, { shell: 'ignore' });
      const url = shellUrl(server, org, device.id);
      const as = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
      for (const role of ['viewer', 'operator'] as const) {
        const member = await memberWithRole(server, org, `shell-${role}@example.com`, role);
        const refused = await refusal(url, [], as(member.token));
        assert.equal(refused.status, 403, role);
        assert.equal(refused.body.error.code, 'forbidden');
      }
      const elsewhere = await request(server.url, 'POST', '/api/orgs', { token: server.admin.token, body: { slug: 'shell-elsewhere', name: 'Elsewhere' } });
      const outsider = await memberWithRole(server, elsewhere.body.id, 'shell-outsider@example.com', 'admin');
      assert.equal((await refusal(url, [], as(outsider.token))).status, 404);
      assert.equal((await refusal(shellUrl(server, elsewhere.body.id, device.id), [], as(outsider.token))).status, 404, "another organization's path does not reach it");
      const key = await request(server.url, 'POST', `/api/orgs/${org}/api-keys`, { token: server.admin.token, body: { name: 'shell admin key', role: 'admin' } });
      await request(server.url, 'DELETE', `/api/orgs/${org}/api-keys/${key.body.id}`, { token: server.admin.token });
      assert.equal((await refusal(url, [], as(key.body.key))).status, 401);
      assert.equal((await refusal(url)).status, 401);
      assert.equal((await refusal(url, [], as(device.key))).status, 403, 'a device opens no shells');
      assert.equal((await refusal(shellUrl(server, org, 'dev_unknown'), [], as(server.admin.token))).status, 404);

      const plain = await registerDevice(server, org, 'shell-8', { action: true });
      const plainOnline = await connectDevice(server, server, org, plain);
      const noShell = await refusal(shellUrl(server, org, plain.id), [], as(server.admin.token));
      assert.equal(noShell.status, 409);
      await plainOnline.simulator.close();

      await simulator.close();
      await waitOnline(server, org, device.id, false);
      const offline = await refusal(url, [], as(server.admin.token));
      assert.equal(offline.status, 503);
      assert.equal(offline.body.error.details.reason, 'device_offline');
      assert.deepEqual(await sessions(device.id), [], 'nothing is recorded for a refused shell');

      // The audit view: admins of the organization only.
      const listing = `/api/orgs/${org}/shell-sessions`;
      const operatorMember = await login(server.url, 'shell-operator@example.com', 'member-password-1');
      assert.equal((await request(server.url, 'GET', listing, { token: operatorMember.accessToken })).status, 403);
      assert.equal((await request(server.url, 'GET', listing, { token: outsider.token })).status, 404);
      assert.equal((await request(server.url, 'GET', listing, { token: key.body.key })).status, 401);
      assert.equal((await request(server.url, 'GET', listing, { token: device.key })).status, 404, 'devices do not read the audit view');
      assert.equal((await request(server.url, 'GET', `${listing}?limit=0`, { token: server.admin.token })).status, 400);
    });
  });
}
