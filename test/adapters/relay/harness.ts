import assert from 'node:assert/strict';
import { WebSocket, type ClientOptions } from 'ws';
import { request, type TestServer } from '../../helpers/server.ts';
import { Arrivals } from '../../helpers/waiting.ts';

/** One frame as a relay client received it. */
export interface Received {
  data: string | Buffer;
  binary: boolean;
}

/** A WebSocket client of the relay that keeps every frame in arrival order. */
export class RelayClient {
  readonly received: Received[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #arrivals = new Arrivals();

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data, binary) => {
      const bytes = data as Buffer;
      this.received.push({ data: binary ? bytes : bytes.toString('utf8'), binary });
      this.#arrivals.arrived();
    });
  }

  /** Opens `url` with a token in the Authorization header (or as `?token=`, or as a `bearer.` subprotocol). */
  static open(url: string, token?: string, how: 'header' | 'query' | 'protocol' = 'header', options: ClientOptions = {}): Promise<RelayClient> {
    const headers = token && how === 'header' ? { authorization: `Bearer ${token}` } : undefined;
    const target = token && how === 'query' ? `${url}?token=${encodeURIComponent(token)}` : url;
    const protocols = token && how === 'protocol' ? [`bearer.${token}`, 'relay'] : [];
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(target, protocols, { headers, ...options });
      ws.once('open', () => resolve(new RelayClient(ws)));
      ws.once('error', reject);
    });
  }

  /** The text frames received, in order. */
  get texts(): string[] {
    return this.received.filter((r) => !r.binary).map((r) => r.data as string);
  }

  send(frame: string | Buffer): void {
    this.ws.send(frame);
  }

  /** Waits until `count` frames have arrived in all, and returns the frame at index count - 1. */
  async frame(count: number, ms = 10_000): Promise<Received> {
    await this.until(() => this.received.length >= count, `${count} frames (have ${this.received.length}: ${JSON.stringify(this.texts)})`, ms);
    return this.received[count - 1]!;
  }

  /** Waits for the text frame that equals `text` (as JSON when given an object). */
  async sees(expected: string | object, ms = 10_000): Promise<void> {
    const text = typeof expected === 'string' ? expected : JSON.stringify(expected);
    await this.until(() => this.texts.includes(text), `${text} (have ${JSON.stringify(this.texts)})`, ms);
  }

  until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
    return this.#arrivals.until(condition, what, ms);
  }

  close(): void {
    this.ws.close();
  }
}

export const presence = (state: 'online' | 'offline', channel: string) => ({ presence: state, channel });

/** ws://… of the relay endpoint of a node. */
export const relayUrl = (base: string, channel: string) => `${base.replace(/^http/, 'ws')}/api/relay/${channel}`;

/** A device registered in `orgId` with an external id, and an API key of its own. */
export async function relayDevice(server: TestServer, orgId: string, externalId: string | undefined, name = externalId ?? 'relay device'): Promise<{ id: string; key: string; keyId: string }> {
  const created = await request(server.url, 'POST', `/api/orgs/${orgId}/devices`, { token: server.admin.token, body: { name, ...(externalId !== undefined && { externalId }) } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const key = await request(server.url, 'POST', `/api/orgs/${orgId}/api-keys`, { token: server.admin.token, body: { name: `${name} key`, deviceId: created.body.id } });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  return { id: created.body.id as string, key: key.body.key as string, keyId: key.body.id as string };
}

/** An API key acting for the admin in `orgId` with `role`. */
export async function userKey(server: TestServer, orgId: string, role: 'viewer' | 'operator' | 'admin'): Promise<{ key: string; id: string }> {
  const created = await request(server.url, 'POST', `/api/orgs/${orgId}/api-keys`, { token: server.admin.token, body: { name: `${role} key`, role } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return { key: created.body.key as string, id: created.body.id as string };
}

/** Whether the registry says the device is connected somewhere. */
export async function isOnline(server: TestServer, orgId: string, deviceId: string): Promise<boolean> {
  const device = await request(server.url, 'GET', `/api/orgs/${orgId}/devices/${deviceId}`, { token: server.admin.token });
  assert.equal(device.status, 200);
  return device.body.online as boolean;
}
