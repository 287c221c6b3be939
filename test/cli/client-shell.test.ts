import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../helpers/process.ts';
import { type TestServer } from '../helpers/server.ts';
import { connectDevice, registerDevice, waitOnline, type EchoShell } from '../adapters/shell/harness.ts';
import type { ShellySimulator } from '../adapters/shelly/simulator.ts';
import { type ClientRunner, useClientServer, describeRun } from './client-run.ts';

/**
 * `fleetd devices shell` with piped standard input against a real server, and a simulated device on
 * /api/devices/ws that dials back when asked and echoes what it receives, as a PTY does.
 */

let server: TestServer;
let cli: ClientRunner;
useClientServer((started) => ({ server, cli } = started));

describe('fleetd devices shell', () => {
  let simulator: ShellySimulator;
  let shells: EchoShell[];
  let deviceId: string;

  before(async () => {
    const device = await registerDevice(server, server.admin.orgId, 'shell-box');
    deviceId = device.id;
    ({ simulator, shells } = await connectDevice(server, server, server.admin.orgId, device));
  });
  after(() => simulator?.close());

  it('relays piped input to the device, the device’s bytes to stdout, and exits with the remote exit code', async () => {
    const shell = cli.start(['devices', 'shell', deviceId], { input: 'uname -a\n' });
    await waitFor(() => shells.length === 1 || shell.spawned.child.exitCode !== null, () => 'no shell attached');
    assert.equal(shells.length, 1, shell.spawned.stderr());
    // The end of the piped input reaches the device as Ctrl-D, after the bytes, as from a terminal.
    await shells[0]!.until(() => shells[0]!.bytes.toString('latin1') === 'uname -a\n\x04', 'the input and its end');
    shells[0]!.ws.send(Buffer.from('Linux shell-box\n'));
    shells[0]!.ws.send(JSON.stringify({ type: 'exit', code: 3 }));

    const run = await shell.ended;
    assert.equal(run.code, 3, describeRun(run));
    assert.equal(run.stdout, 'uname -a\n\x04Linux shell-box\n', 'the echo, then the output, in order');
    assert.equal(run.stderr, '');
    assert.deepEqual(shells[0]!.controls, [], 'no terminal here: no resize');
  });

  it('a device without the shell capability, an offline one and an unknown one are refused with exit 1', async () => {
    const noShell = await registerDevice(server, server.admin.orgId, 'no-shell-box', { shell: false });
    const connected = await connectDevice(server, server, server.admin.orgId, noShell);
    const offline = await registerDevice(server, server.admin.orgId, 'offline-box');
    await waitOnline(server, server.admin.orgId, offline.id, false);
    const [withoutCapability, notConnected, unknown] = await Promise.all([
      cli.run(['devices', 'shell', noShell.id]),
      cli.run(['devices', 'shell', offline.id]),
      cli.run(['devices', 'shell', 'dev_00000000000000000000000000']),
    ]).finally(() => connected.simulator.close());
    assert.equal(withoutCapability.code, 1, describeRun(withoutCapability));
    assert.match(withoutCapability.stderr, /^fleetd: .+ \(HTTP 409 conflict\)\n$/);
    assert.equal(notConnected.code, 1, describeRun(notConnected));
    assert.match(notConnected.stderr, /^fleetd: .+ \(HTTP 503 unavailable\)\n$/);
    assert.equal(unknown.code, 1, describeRun(unknown));
    assert.match(unknown.stderr, /^fleetd: .*not found \(HTTP 404 not_found\)\n$/);
  });
});
