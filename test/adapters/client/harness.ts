import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { OutgoingCalls } from '../../../src/adapters/jsonrpc/calls.ts';
import type { ErrorObject, Params } from '../../../src/adapters/jsonrpc/messages.ts';
import type { HubEvent, NewHubEvent } from '../../../src/hub/events.ts';
import type { Hub } from '../../../src/hub/hub.ts';
import type { Device } from '../../../src/services/devices.ts';
import { systemActor } from '../../../src/services/actor.ts';
import { memberWithRole, request, type TestServer } from '../../helpers/server.ts';
import { Arrivals } from '../../helpers/waiting.ts';

/** The hub of a test server, for what a test plays itself: a device's connection, events. */
export const hubOf = (server: TestServer): Hub => server.server.hub;

export const wsUrl = (server: TestServer, query = '') => `${server.url.replace(/^http/, 'ws')}/api/ws${query}`;

export interface RpcReply {
  jsonrpc: '2.0';
  id: string | number | null;
  result?: any;
  error?: ErrorObject & { data?: any };
}

export interface EventNotification {
  subscription: string;
  event: HubEvent;
}

/** A JSON-RPC client on /api/ws: calls matched by id, Event notifications kept in arrival order. */
export class RpcClient {
  readonly events: EventNotification[] = [];
  /** Every other frame received, parsed (replies to raw frames, batches). */
  readonly frames: unknown[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #waiting = new Map<string | number, (reply: RpcReply) => void>();
  readonly #arrivals = new Arrivals();
  #nextId = 1;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data, isBinary) => {
      assert.equal(isBinary, false, 'the server sends text frames only');
      const message = JSON.parse(data.toString()) as any;
      if (message?.method === 'Event') this.events.push(message.params as EventNotification);
      else if (message && !Array.isArray(message) && this.#waiting.has(message.id)) {
        this.#waiting.get(message.id)!(message as RpcReply);
        this.#waiting.delete(message.id);
      } else this.frames.push(message);
      this.#arrivals.arrived();
    });
  }

  static open(url: string, token: string | undefined, how: 'header' | 'protocol' | 'query' = 'header'): Promise<RpcClient> {
    const headers = token && how === 'header' ? { authorization: `Bearer ${token}` } : undefined;
    const protocols = token && how === 'protocol' ? [`bearer.${token}`, 'jsonrpc-2.0'] : [];
    const target = token && how === 'query' ? `${url}?token=${encodeURIComponent(token)}` : url;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(target, protocols, { headers });
      ws.once('open', () => resolve(new RpcClient(ws)));
      ws.once('error', reject);
    });
  }

  call(method: string, params?: unknown): Promise<RpcReply> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.ws.send(JSON.stringify({ jsonrpc: '2.0', method, ...(params !== undefined && { params }), id }));
    });
  }

  /** The result of a call that must succeed. */
  async result(method: string, params?: unknown): Promise<any> {
    const reply = await this.call(method, params);
    assert.equal(reply.error, undefined, `${method} failed: ${JSON.stringify(reply.error)}`);
    return reply.result;
  }

  /** The error of a call that must fail. */
  async error(method: string, params?: unknown): Promise<ErrorObject & { data?: any }> {
    const reply = await this.call(method, params);
    assert.ok(reply.error, `${method} succeeded: ${JSON.stringify(reply.result)}`);
    return reply.error;
  }

  /** Sends a frame as it is and waits for the next frame that is not an event. */
  async raw(text: string | Buffer): Promise<unknown> {
    const before = this.frames.length;
    this.ws.send(text);
    await this.until(() => this.frames.length > before, 'a reply');
    return this.frames[before];
  }

  async eventsUntil(count: number, ms = 10_000): Promise<EventNotification[]> {
    await this.until(() => this.events.length >= count, `${count} events (have ${this.events.length})`, ms);
    return this.events;
  }

  until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
    return this.#arrivals.until(condition, what, ms);
  }

  close(): void {
    this.ws.close();
  }
}

/** A device registered in an organization. */
export async function newDevice(server: TestServer, orgId: string, name: string, options: { tags?: string[]; externalId?: string } = {}): Promise<Device> {
  return server.services.devices.create(systemActor, orgId, { name, ...options });
}

export async function newOrg(server: TestServer, slug: string): Promise<string> {
  const created = await request(server.url, 'POST', '/api/orgs', { token: server.admin.token, body: { slug, name: slug } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.id as string;
}

/** An API key of a new member of `orgId` with `role`. */
export async function memberKey(server: TestServer, orgId: string, email: string, role: 'viewer' | 'operator' | 'admin'): Promise<{ key: string; keyId: string; token: string }> {
  const member = await memberWithRole(server, orgId, email, role);
  const created = await request(server.url, 'POST', `/api/orgs/${orgId}/api-keys`, { token: member.token, body: { name: `${email} key` } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return { key: created.body.key, keyId: created.body.id, token: member.token };
}

export type DeviceAnswer = { result: unknown } | { error: ErrorObject } | 'silent';

/**
 * A device connected to the hub as an adapter would connect it: its calls go through OutgoingCalls,
 * and `answer` plays the device (a result, an error, or no answer at all).
 */
export async function fakeDevice(hub: Hub, device: { id: string; orgId: string }, answer: (method: string, params: Params | undefined) => DeviceAnswer) {
  const received: Array<{ method: string; params?: Params }> = [];
  const calls: OutgoingCalls = new OutgoingCalls({
    timeoutMs: 5000,
    send: (request) => {
      received.push({ method: request.method, params: request.params });
      const answered = answer(request.method, request.params);
      if (answered === 'silent') return;
      setImmediate(() =>
        calls.settle('result' in answered ? { kind: 'response', id: request.id, ok: true, result: answered.result, members: {} } : { kind: 'response', id: request.id, ok: false, error: answered.error, members: {} }),
      );
    },
  });
  const detach = await hub.links.attach(device, {
    call: (method, params, timeoutMs) => calls.call(method, params, { timeoutMs }),
    close: () => calls.close(),
  });
  return {
    received,
    async disconnect() {
      calls.close();
      await detach();
    },
  };
}

export const publish = (server: TestServer, event: NewHubEvent): Promise<HubEvent> => hubOf(server).events.publish(event);
