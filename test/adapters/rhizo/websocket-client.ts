import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { request, type TestServer } from '../../helpers/server.ts';
import { Arrivals } from '../../helpers/waiting.ts';

/** A server frame: `{type, timestamp, parameters}`. */
export interface RhizoFrame {
  type: string;
  timestamp: string;
  parameters: Record<string, any>;
}

/** The Authorization header rhizo-client sends: Basic base64("<VERSION>.<BUILD>:<secret key>"). */
export const basicAuth = (key: string, version = '0.2.7.1234') => `Basic ${Buffer.from(`${version}:${key}`).toString('base64')}`;

export const rhizoUrl = (base: string, path = '/api/v1/websocket') => `${base.replace(/^http/, 'ws')}${path}`;

/** A rhizo client over `ws`, written from rhizo.md §5/§7: JSON frames each ending in a newline. */
export class RhizoClient {
  readonly frames: RhizoFrame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #arrivals = new Arrivals();

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)) as RhizoFrame);
      this.#arrivals.arrived();
    });
  }

  static open(url: string, authorization: string, protocols: string[] = []): Promise<RhizoClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, { headers: { authorization } });
      ws.once('open', () => resolve(new RhizoClient(ws)));
      ws.once('error', reject);
    });
  }

  send(type: string, parameters: unknown = {}, folder?: unknown): void {
    this.raw(`${JSON.stringify({ type, parameters, ...(folder !== undefined && { folder }) })}\n`);
  }

  raw(text: string): void {
    this.ws.send(text);
  }

  /** Frames of a type received so far. */
  of(type: string): RhizoFrame[] {
    return this.frames.filter((f) => f.type === type);
  }

  /** Waits for the first frame of a type that `match` accepts, and returns it. */
  async next(type: string, match: (frame: RhizoFrame) => boolean = () => true, ms = 10_000): Promise<RhizoFrame> {
    let found: RhizoFrame | undefined;
    await this.#arrivals.until(() => (found = this.of(type).find(match)) !== undefined, `a ${type} frame (have ${JSON.stringify(this.frames)})`, ms);
    return found!;
  }

  /** Waits for an `error` frame whose message is `message`, and removes it so the next one can be waited for. */
  async error(message: string | RegExp, ms = 10_000): Promise<void> {
    const matches = (f: RhizoFrame) => f.type === 'error' && (typeof message === 'string' ? f.parameters.message === message : message.test(f.parameters.message));
    await this.#arrivals.until(() => this.frames.some(matches), `error ${String(message)} (have ${JSON.stringify(this.frames)})`, ms);
    this.frames.splice(this.frames.findIndex(matches), 1);
  }

  /**
   * A round trip: the answer to a frame sent now comes after everything this connection was sent
   * before, so a test can then assert that something did not arrive.
   */
  async sync(): Promise<void> {
    this.send('send_text_message', { phone_numbers: '', message: 'sync' });
    await this.error(/^send_text_message is not supported/);
  }

  close(): void {
    this.ws.close();
  }
}

/** A device (rhizo's controller) of organization `orgId` with a key of its own; its folder is `/<org slug>/<name>`. */
export async function controller(server: TestServer, orgId: string, name: string): Promise<{ id: string; key: string; keyId: string }> {
  const created = await request(server.url, 'POST', `/api/orgs/${orgId}/devices`, { token: server.admin.token, body: { name } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const key = await request(server.url, 'POST', `/api/orgs/${orgId}/api-keys`, { token: server.admin.token, body: { name: `${name} key`, deviceId: created.body.id } });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  return { id: created.body.id as string, key: key.body.key as string, keyId: key.body.id as string };
}

/** A key acting for the calling user (the system admin by default) in organization `orgId`. */
export async function userKey(server: TestServer, orgId: string, token = server.admin.token): Promise<{ key: string; keyId: string }> {
  const key = await request(server.url, 'POST', `/api/orgs/${orgId}/api-keys`, { token, body: { name: 'rhizo user key' } });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  return { key: key.body.key as string, keyId: key.body.id as string };
}
