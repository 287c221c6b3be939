import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../../../src/server.ts';
import { backends } from '../../helpers/backends.ts';
import { request, startNode, startTestServer, type TestServer } from '../../helpers/server.ts';
import { busBackends, natsTestUrl } from '../../hub/buses.ts';
import { eventually } from '../../hub/websocket-harness.ts';
import { RelayClient } from '../relay/harness.ts';
import { connectDevice, registerDevice, shellUrl } from './harness.ts';

/** The operator on one node, the device (and its dial-back) on another: the shell crosses NATS. */
const nats = (await busBackends()).find((b) => b.name === 'nats')!;
for (const backend of await backends()) {
  describe(`remote shell across nodes joined by NATS [${backend.name}]`, { skip: backend.skip ?? nats.skip }, () => {
    let first: TestServer;
    let second: RunningServer;
    let data: string;
    let org: string;

    before(async () => {
      first = await startTestServer(backend, { bus: natsTestUrl, messageLog: 'off' });
      data = mkdtempSync(join(tmpdir(), 'fleetd-node-'));
      second = await startNode(first.databaseUrl, data, { bus: natsTestUrl, messageLog: 'off' });
      org = first.admin.orgId;
    });
    after(async () => {
      await second?.close();
      await first?.close();
      if (data) rmSync(data, { recursive: true, force: true });
    });

    it('relays bytes in order both ways, large frames included, and ends both sides', async () => {
      const device = await registerDevice(first, org, 'far-shell');
      const { simulator, shells } = await connectDevice(first, first, org, device);
      const client = await RelayClient.open(shellUrl(second, org, device.id), first.admin.token);
      const frames = Array.from({ length: 50 }, (_, i) => Buffer.from(`line ${i}\n`));
      // Larger than a bus message once in base64: it crosses in pieces, the same bytes in the same order.
      const large = Buffer.alloc(900 * 1024, 7);
      for (const frame of frames) client.send(frame);
      client.send(large);
      client.send(JSON.stringify({ type: 'resize', cols: 80, rows: 24 }));
      const expected = Buffer.concat([...frames, large]);
      const echoed = () => Buffer.concat(client.received.filter((r) => r.binary).map((r) => r.data as Buffer));
      await client.until(() => echoed().length >= expected.length, 'the echo of everything');
      assert.ok(echoed().equals(expected));
      const shell = shells[0]!;
      assert.ok(shell.bytes.equals(expected));
      await shell.until(() => shell.controls.length === 1, 'the resize');
      assert.deepEqual(shell.controls, [{ type: 'resize', cols: 80, rows: 24 }]);

      shell.ws.close(1000, 'exit');
      assert.deepEqual(await client.closed, { code: 1000, reason: 'device closed the shell' });
      await eventually(
        async () => {
          const listed = await request(first.url, 'GET', `/api/orgs/${org}/shell-sessions?deviceId=${device.id}`, { token: first.admin.token });
          const [session] = listed.body.items as any[];
          return session?.status === 'closed' && session.node === second.hub.nodeId && session.bytesFromDevice === expected.length;
        },
        5000,
        'the session recorded by the operator’s node',
      );

      const again = await RelayClient.open(shellUrl(second, org, device.id), first.admin.token);
      again.send(Buffer.from('q'));
      await again.until(() => again.received.length === 1, 'the echo');
      again.close();
      assert.deepEqual(await shells[1]!.closed, { code: 1000, reason: 'operator closed the shell' });
      await simulator.close();
    });
  });
}
