import assert from 'node:assert/strict';
import { insertUser } from '../../../src/services/users.ts';
import { login, request, type Reply, type TestServer } from '../../helpers/server.ts';
import { RdfmDevice, type RdfmSocket } from './simulator.ts';

/** An RDFM management call as rdfm-mgmt makes it: `Authorization: Bearer token=<token>`. */
export function rdfmCall(server: TestServer, token: string | undefined, method: string, path: string, body?: unknown): Promise<Reply> {
  return request(server.url, method, path, { body, headers: token === undefined ? {} : { authorization: `Bearer token=${token}` } });
}

/** An RDFM device accepted into organization `default`, authenticated: its fleetd id. */
export async function admitRdfmDevice(server: TestServer, mac: string): Promise<{ device: RdfmDevice; deviceId: string }> {
  const device = new RdfmDevice(server.url, mac);
  assert.equal((await device.auth()).status, 401);
  const pending = await request(server.url, 'GET', '/api/pending-devices', { token: server.admin.token });
  const entry = pending.body.items.find((p: any) => p.externalId === mac);
  const accepted = await request(server.url, 'POST', `/api/pending-devices/${entry.id}/accept`, { token: server.admin.token, body: { org: 'default' } });
  assert.equal(accepted.status, 201);
  assert.equal((await device.auth()).status, 200);
  return { device, deviceId: accepted.body.id };
}

/** Connects the device's management socket and reports `capabilities`; with `action`, answers the list query with `actions`. */
export async function connectRdfmDevice(device: RdfmDevice, capabilities: Record<string, boolean>, actions: unknown[] = []): Promise<RdfmSocket> {
  const socket = await device.connect();
  await socket.frame('alert');
  socket.send({ method: 'capability_report', capabilities });
  if (capabilities.action) {
    await socket.frame('action_list_query');
    socket.send({ method: 'action_list_update', actions });
  }
  return socket;
}

/** Another organization with an admin API key of its own (the server's admin is no member of it). */
export async function otherOrganization(server: TestServer, slug: string): Promise<{ orgId: string; key: string }> {
  const email = `owner@${slug}.example.com`;
  const password = 'other-password-1';
  const user = await insertUser(server.services.store.db, { email, password, systemAdmin: false });
  const org = await request(server.url, 'POST', '/api/orgs', { token: server.admin.token, body: { slug, name: slug, ownerId: user.id } });
  assert.equal(org.status, 201, JSON.stringify(org.body));
  const { accessToken } = await login(server.url, email, password);
  const key = await request(server.url, 'POST', `/api/orgs/${slug}/api-keys`, { token: accessToken, body: { name: 'rdfm', role: 'admin' } });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  return { orgId: org.body.id, key: key.body.key };
}

/** Reads until `check` accepts it, every 20 ms, at most 10 s. */
export async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean, what: string): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const value = await read();
    if (check(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}
