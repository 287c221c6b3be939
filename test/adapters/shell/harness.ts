import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { request, type TestServer } from '../../helpers/server.ts';
import { Arrivals } from '../../helpers/waiting.ts';
import { eventually } from '../../hub/websocket-harness.ts';
import { ShellySimulator, type Answer, type JsonObject } from '../shelly/simulator.ts';

/** A device registered with a key of its own, and the external id it connects as. */
export interface RegisteredDevice {
  id: string;
  externalId: string;
  key: string;
  keyId: string;
}

export const wsBase = (server: { url: string }) => server.url.replace(/^http/, 'ws');

export const shellUrl = (server: { url: string }, orgId: string, deviceId: string) => `${wsBase(server)}/api/orgs/${orgId}/devices/${deviceId}/shell`;

/** A device of `orgId` with a key, which reports `capabilities` over REST as fleetd's devices do. */
export async function registerDevice(server: TestServer, orgId: string, externalId: string, capabilities: Record<string, boolean> = { shell: true, action: true, filesystem: true }): Promise<RegisteredDevice> {
  const created = await request(server.url, 'POST', `/api/orgs/${orgId}/devices`, { token: server.admin.token, body: { name: externalId, externalId } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const key = await request(server.url, 'POST', `/api/orgs/${orgId}/api-keys`, { token: server.admin.token, body: { name: `${externalId} key`, deviceId: created.body.id } });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  const reported = await request(server.url, 'PUT', '/api/devices/self/capabilities', { token: key.body.key, body: { capabilities } });
  assert.equal(reported.status, 200, JSON.stringify(reported.body));
  return { id: created.body.id, externalId, key: key.body.key, keyId: key.body.id };
}

/**
 * The device end of a shell, as a device's agent would run it over a PTY: it dials the URL it was
 * given with its own key, writes back every byte it receives (a PTY's echo) and keeps the control
 * frames it is sent.
 */
export class EchoShell {
  readonly received: Buffer[] = [];
  readonly controls: unknown[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #arrivals = new Arrivals();

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data, binary) => {
      const bytes = data as Buffer;
      if (binary) {
        this.received.push(bytes);
        ws.send(bytes);
      } else this.controls.push(JSON.parse(bytes.toString('utf8')));
      this.#arrivals.arrived();
    });
  }

  static dial(url: string, key: string): Promise<EchoShell> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${key}` } });
      ws.once('open', () => resolve(new EchoShell(ws)));
      ws.once('error', reject);
    });
  }

  get bytes(): Buffer {
    return Buffer.concat(this.received);
  }

  until(condition: () => boolean, what: string): Promise<void> {
    return this.#arrivals.until(condition, what);
  }
}

/** How the simulated device answers the server's remote-operation calls; by default it accepts them. */
export interface DeviceBehaviour {
  /** Fleetd.ShellAttach: dial back (default), or answer without dialing ('ignore'), or with an error. */
  shell?: 'echo' | 'ignore' | 'refuse';
  onRunAction?(params: JsonObject): Answer | Promise<Answer>;
  onUploadFile?(params: JsonObject): Answer | Promise<Answer>;
}

/** A fleetd device on /api/devices/ws (the Shelly simulator with a key) that serves shells; resolves once it is online. */
export async function connectDevice(server: TestServer, node: { url: string }, orgId: string, device: RegisteredDevice, behaviour: DeviceBehaviour = {}): Promise<{ simulator: ShellySimulator; shells: EchoShell[] }> {
  const shells: EchoShell[] = [];
  const simulator = await ShellySimulator.connect({ url: `${wsBase(node)}/api/devices/ws`, id: device.externalId, headers: { authorization: `Bearer ${device.key}` } });
  simulator.on('Fleetd.ShellAttach', async (params) => {
    const mode = behaviour.shell ?? 'echo';
    if (mode === 'refuse') return { error: { code: -1, message: 'shell disabled' } };
    if (mode === 'echo') shells.push(await EchoShell.dial(String(params!.url), device.key));
    return { result: {} };
  });
  if (behaviour.onRunAction) simulator.on('Fleetd.RunAction', (params) => behaviour.onRunAction!(params!));
  if (behaviour.onUploadFile) simulator.on('Fleetd.UploadFile', (params) => behaviour.onUploadFile!(params!));
  await waitOnline(server, orgId, device.id, true);
  return { simulator, shells };
}

export async function waitOnline(server: TestServer, orgId: string, deviceId: string, online: boolean): Promise<void> {
  await eventually(
    async () => (await request(server.url, 'GET', `/api/orgs/${orgId}/devices/${deviceId}`, { token: server.admin.token })).body.online === online,
    10_000,
    `device ${deviceId} ${online ? 'online' : 'offline'}`,
  );
}
