import assert from 'node:assert/strict';
import { systemActor } from '../../../src/services/actor.ts';
import { insertUser } from '../../../src/services/users.ts';
import { login, request, type TestServer } from '../../helpers/server.ts';
import { RdfmDevice } from './simulator.ts';

export interface RdfmReply {
  status: number;
  body: any;
}

/** Calls RDFM's management API as rdfm-mgmt does: `Authorization: Bearer token=<token>`, JSON bodies (a string is sent as it is). */
export function rdfmClient(server: TestServer, token: string | undefined) {
  return async (method: string, path: string, body?: unknown): Promise<RdfmReply> => {
    const headers: Record<string, string> = {};
    if (token !== undefined) headers.authorization = `Bearer token=${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, body: text === '' ? null : JSON.parse(text) };
  };
}

/** An API key of organization `orgId` (slug or id) created by the user of `userToken`, with `role`. */
export async function apiKey(server: TestServer, orgId: string, userToken: string, role?: 'viewer' | 'operator' | 'admin' | 'owner'): Promise<string> {
  const created = await request(server.url, 'POST', `/api/orgs/${orgId}/api-keys`, { token: userToken, body: { name: `rdfm ${role ?? 'key'}`, ...(role && { role }) } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.key;
}

/**
 * Another organization with its own owner (not the system admin, who must stay in one organization
 * only for RDFM's API to know which one it stands for), and an owner API key of it.
 */
export async function otherOrganization(server: TestServer, slug: string): Promise<{ orgId: string; ownerToken: string; key: string }> {
  const email = `${slug}-owner@example.com`;
  const password = 'other-owner-password-1';
  const owner = await insertUser(server.services.store.db, { email, password, systemAdmin: false });
  const org = await server.services.organizations.create(systemActor, { slug, name: slug, ownerId: owner.id });
  const ownerToken = (await login(server.url, email, password)).accessToken;
  return { orgId: org.id, ownerToken, key: await apiKey(server, org.id, ownerToken) };
}

/** An RDFM device registered through RDFM's management API by `admin` (a system admin's token), with its RDFM integer. */
export async function registeredDevice(server: TestServer, mac: string, metadata?: Record<string, string>): Promise<{ device: RdfmDevice; number: number; fleetdId: string }> {
  const device = new RdfmDevice(server.url, mac, metadata);
  assert.equal((await device.auth()).status, 401);
  const admin = rdfmClient(server, server.admin.token);
  assert.equal((await admin('POST', '/api/v1/auth/register', { mac_address: mac, public_key: device.publicPem })).status, 200);
  assert.equal((await device.auth()).status, 200);
  const listed = await admin('GET', '/api/v2/devices');
  const shown = listed.body.find((d: any) => d.mac_address === mac);
  const found = await server.services.devices.findByExternalId(mac);
  return { device, number: shown.id, fleetdId: found!.id };
}

export const rfc822Shape = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;
