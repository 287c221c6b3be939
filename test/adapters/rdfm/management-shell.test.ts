import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { backends } from '../../helpers/backends.ts';
import { memberWithRole, startTestServer, type TestServer } from '../../helpers/server.ts';
import type { RdfmDevice, RdfmSocket } from './simulator.ts';
import { admitRdfmDevice, connectRdfmDevice, otherOrganization } from './remote-fixture.ts';

/** A manager's shell socket as rdfm-mgmt opens it, keeping the bytes it receives and how it closed. */
class ManagerShell {
  readonly received: Buffer[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => this.received.push(data as Buffer));
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<ManagerShell> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      const shell = new ManagerShell(ws);
      ws.once('open', () => resolve(shell));
      ws.once('error', reject);
    });
  }

  /** The HTTP status and body that refused the upgrade. */
  static refusal(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      ws.once('open', () => reject(new Error('the upgrade was accepted')));
      ws.once('error', () => {});
      ws.once('unexpected-response', (_request, response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve({ status: response.statusCode!, body: text === '' ? null : JSON.parse(text) }));
      });
    });
  }

  text(): string {
    return Buffer.concat(this.received).toString();
  }
}

/** RDFM's manager shell `/api/v1/devices/<mac>/shell` relayed to a simulated RDFM device. */
for (const backend of await backends()) {
  describe(`RDFM management: manager shell [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let device: RdfmDevice;
    let socket: RdfmSocket;
    let noShell: RdfmSocket;
    const mac = '02:00:00:00:00:11';
    const offlineMac = '02:00:00:00:00:12';
    const noShellMac = '02:00:00:00:00:13';
    const shellUrl = (target: string, token?: string) => `${server.url.replace(/^http/, 'ws')}/api/v1/devices/${target}/shell${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`;

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off', shellAttachTimeout: '1' });
      ({ device } = await admitRdfmDevice(server, mac));
      socket = await connectRdfmDevice(device, { shell: true, action: false });
      await admitRdfmDevice(server, offlineMac);
      noShell = await connectRdfmDevice((await admitRdfmDevice(server, noShellMac)).device, { shell: false, action: false });
      // The capability reports are stored once fleetd read them: the next frame comes after.
      await new Promise((resolve) => setTimeout(resolve, 200));
    });
    after(async () => {
      socket?.close();
      noShell?.close();
      await server?.close();
    });

    /** The device's side: takes the shell_attach and dials back. */
    async function attach(): Promise<RdfmSocket> {
      const frame = await socket.frame('shell_attach');
      socket.frames.splice(socket.frames.indexOf(frame), 1);
      assert.equal(frame.mac_addr, mac);
      return device.connect(`/api/v1/devices/${encodeURIComponent(mac)}/shell/attach/${frame.uuid}`);
    }

    it('relays bytes both ways with ?token=, and closes the manager 1000 when the device ends', async () => {
      const manager = await ManagerShell.open(shellUrl(mac, server.admin.token));
      const shell = await attach();
      manager.ws.send(Buffer.from('uptime\n'));
      await shell.until(() => Buffer.concat(shell.binary).toString() === 'uptime\n', 'the manager’s bytes');
      shell.send(Buffer.from(' 12:00 up 3 days\n'));
      await shell.until(() => manager.text() === ' 12:00 up 3 days\n', 'the device’s bytes');
      shell.close();
      assert.equal((await manager.closed).code, 1000);
    });

    it('takes the token in the Authorization header (Bearer token=), and ends the device side when the manager leaves', async () => {
      const manager = await ManagerShell.open(shellUrl(mac), { authorization: `Bearer token=${server.admin.token}` });
      const shell = await attach();
      shell.send(Buffer.from([0x1b, 0x5b, 0x41, 0x00, 0xff]));
      await shell.until(() => Buffer.concat(manager.received).equals(Buffer.from([0x1b, 0x5b, 0x41, 0x00, 0xff])), 'binary bytes verbatim');
      manager.ws.close(1000);
      await shell.closed;
    });

    it('closes 4001 for a device that is not connected, 4003 without the shell capability, 4001 when it does not attach', async () => {
      const offline = await ManagerShell.open(shellUrl(offlineMac, server.admin.token));
      assert.equal((await offline.closed).code, 4001);
      const incapable = await ManagerShell.open(shellUrl(noShellMac, server.admin.token));
      assert.equal((await incapable.closed).code, 4003);
      const silent = await ManagerShell.open(shellUrl(mac, server.admin.token));
      await socket.frame('shell_attach');
      socket.frames.length = 0;
      assert.deepEqual(await silent.closed, { code: 4001, reason: 'device did not attach' });
    });

    it('refuses before the upgrade: no token 401, a viewer or operator 403, another organization 404, an unknown MAC 404', async () => {
      const viewer = await memberWithRole(server, server.admin.orgId, 'viewer@example.com', 'viewer');
      const operator = await memberWithRole(server, server.admin.orgId, 'operator@example.com', 'operator');
      const other = await otherOrganization(server, 'other');
      assert.equal((await ManagerShell.refusal(shellUrl(mac))).status, 401);
      assert.equal((await ManagerShell.refusal(shellUrl(mac, 'not-a-token'))).status, 401);
      assert.equal((await ManagerShell.refusal(shellUrl(mac, viewer.token))).status, 403);
      assert.equal((await ManagerShell.refusal(shellUrl(mac), { authorization: `Bearer token=${operator.token}` })).status, 403);
      const foreign = await ManagerShell.refusal(shellUrl(mac, other.key));
      assert.equal(foreign.status, 404);
      assert.equal(typeof foreign.body.error.message, 'string');
      assert.equal((await ManagerShell.refusal(shellUrl('ff:ff:ff:ff:ff:ff', server.admin.token))).status, 404);
      assert.equal((await ManagerShell.refusal(shellUrl('%E0%A4%A', server.admin.token))).status, 400);
      assert.equal((await ManagerShell.refusal(shellUrl('x'.repeat(300), server.admin.token))).status, 404);
      const deviceToken = await ManagerShell.refusal(shellUrl(mac), { authorization: device.authorization });
      assert.equal(deviceToken.status, 403);
      assert.equal(socket.frames.filter((f) => f.method === 'shell_attach').length, 0, 'the device was told nothing');
    });
  });
}
