import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends } from '../../helpers/backends.ts';
import { request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { eventually, rawExchange, refusal } from '../../hub/websocket-harness.ts';
import { RelayClient } from '../relay/harness.ts';
import { connectDevice, EchoShell, registerDevice, shellUrl, type RegisteredDevice } from './harness.ts';

/** What an operator or a device may send a shell that it should not: each ends its own socket and the shell, nothing more. */

const maxFrame = 64 * 1024;
const sendQueue = 256 * 1024;

for (const backend of await backends()) {
  describe(`remote shell, hostile input [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    let device: RegisteredDevice;
    let shells: EchoShell[];
    let closeDevice: () => Promise<unknown>;
    const clients: RelayClient[] = [];

    /** An operator with its shell attached: the echo of one byte came back. */
    const attachedShell = async (): Promise<{ client: RelayClient; shell: EchoShell }> => {
      const client = await RelayClient.open(shellUrl(server, org, device.id), server.admin.token);
      clients.push(client);
      client.send(Buffer.from('.'));
      await client.until(() => client.received.length === 1, 'the echo');
      return { client, shell: shells.at(-1)! };
    };
    const lastSession = async () => {
      const listed = await request(server.url, 'GET', `/api/orgs/${org}/shell-sessions?deviceId=${device.id}&limit=500`, { token: server.admin.token });
      return (listed.body.items as any[]).at(-1);
    };

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off', wsMaxFrame: String(maxFrame), wsSendQueue: String(sendQueue) });
      org = server.admin.orgId;
      device = await registerDevice(server, org, 'hostile-shell');
      const connected = await connectDevice(server, server, org, device);
      shells = connected.shells;
      closeDevice = () => connected.simulator.close();
    });
    after(async () => {
      for (const client of clients) client.ws.terminate();
      await closeDevice?.();
      await server?.close();
    });

    it('closes an operator sending control frames that are not JSON, or not a valid resize (1007), and the device end with it', async () => {
      const garbage = ['not json', '{"type":"resize","cols":"wide","rows":1}', '{"type":"resize","cols":0,"rows":24}', '{"type":"resize","cols":1e9,"rows":24}', '{"type":"exec","cmd":"rm"}', '[1,2]', 'null'];
      for (const text of garbage) {
        const { client, shell } = await attachedShell();
        client.send(text);
        const closed = await client.closed;
        assert.equal(closed.code, 1007, text);
        assert.deepEqual(await shell.closed, { code: 1000, reason: 'operator closed the shell' }, text);
        assert.deepEqual(shell.controls, [], `${text} reached the device`);
      }
    });

    it('closes a device sending control frames other than exit (1007), and the operator with it', async () => {
      for (const text of ['{"type":"exit","code":"zero"}', '{"type":"resize","cols":1,"rows":1}', '\u0000\u0001', '{"type":"exit","code":1.5}']) {
        const { client, shell } = await attachedShell();
        shell.ws.send(text);
        assert.equal((await shell.closed).code, 1007, text);
        assert.deepEqual(await client.closed, { code: 1000, reason: 'device closed the shell' }, text);
        assert.deepEqual(client.received.filter((r) => !r.binary), [], `${text} reached the operator`);
      }
    });

    it('cuts a side sending frames above wsMaxFrame (1009), and ends the shell', async () => {
      const fromOperator = await attachedShell();
      fromOperator.client.send(Buffer.alloc(maxFrame + 1));
      assert.equal((await fromOperator.client.closed).code, 1009);
      await fromOperator.shell.closed;
      assert.equal(fromOperator.shell.bytes.length, 1, 'only the first byte went through');

      const fromDevice = await attachedShell();
      fromDevice.shell.ws.send(Buffer.alloc(maxFrame + 1));
      assert.equal((await fromDevice.shell.closed).code, 1009);
      assert.deepEqual(await fromDevice.client.closed, { code: 1000, reason: 'device closed the shell' });
    });

    it('cuts an operator that stops reading (4008) instead of buffering the device’s output for it, and ends the shell', async () => {
      const { client, shell } = await attachedShell();
      client.ws.pause();
      const chunk = Buffer.alloc(maxFrame - 1, 0x41);
      // Far more than the socket buffers of both ends hold: the rest must wait in fleetd, which refuses to.
      for (let i = 0; i < 1000 && shell.ws.readyState === shell.ws.OPEN; i++) {
        shell.ws.send(chunk);
        if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      assert.deepEqual(await shell.closed, { code: 1000, reason: 'operator closed the shell' });
      client.ws.resume();
      // fleetd closed it with 4008, and cut it when the close could not get through the full queue either.
      assert.ok([4008, 1006].includes((await client.closed).code));
      await eventually(async () => (await lastSession()).closeReason === 'operator closed (4008 send queue full)', 5000, 'the session closed');
    });

    it('takes a device once: a second dial-back is refused (409), one after the close finds nothing (404)', async () => {
      const { client } = await attachedShell();
      const session = await lastSession();
      const url = `${server.url.replace(/^http/, 'ws')}/api/devices/shell/${session.id}`;
      const as = { headers: { authorization: `Bearer ${device.key}` } };
      assert.equal((await refusal(url, [], as)).status, 409);
      client.close();
      await client.closed;
      await eventually(async () => (await lastSession()).status === 'closed', 5000, 'the session closed');
      assert.equal((await refusal(url, [], as)).status, 404);
      assert.equal((await refusal(`${url}x`, [], as)).status, 404, 'not a session id at all');
    });

    it('relays nothing from a socket that did not authenticate: its bytes never reach a shell', async () => {
      const { client, shell } = await attachedShell();
      const session = await lastSession();
      const port = new URL(server.url).port;
      const upgrade = [
        `GET /api/devices/shell/${session.id} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        '',
        '',
      ].join('\r\n');
      // A masked binary frame of "evil" right behind the upgrade request, as if it had been accepted.
      const frame = Buffer.concat([Buffer.from([0x82, 0x84, 1, 2, 3, 4]), Buffer.from('evil').map((byte, i) => byte ^ [1, 2, 3, 4][i]!)]);
      const answer = await rawExchange(Number(port), upgrade + frame.toString('latin1'));
      assert.match(answer, /^HTTP\/1\.1 401 /);
      const operatorPath = new URL(shellUrl(server, org, device.id)).pathname;
      const asOperator = await rawExchange(Number(port), upgrade.replace(`/api/devices/shell/${session.id}`, operatorPath) + frame.toString('latin1'));
      assert.match(asOperator, /^HTTP\/1\.1 401 /);
      client.send(Buffer.from('!'));
      await client.until(() => client.received.length === 2, 'the echo');
      assert.equal(shell.bytes.toString(), '.!', 'the device heard only its operator');
      assert.equal(Buffer.concat(client.received.map((r) => r.data as Buffer)).toString(), '.!', 'the operator heard only its device');
    });
  });
}
