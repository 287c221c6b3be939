import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigKey } from '../../src/config/keys.ts';
import { loadConfig } from '../../src/config/load.ts';
import { systemActor } from '../../src/services/actor.ts';
import type { Services } from '../../src/services/index.ts';
import { insertUser } from '../../src/services/users.ts';
import { createLogger } from '../../src/log.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import type { Backend } from './backends.ts';

export interface TestServer {
  url: string;
  /** The URL of the server's database, for starting more nodes on it. */
  databaseUrl: string;
  /** The server's data folder (its blobs are in `blobs`). */
  data: string;
  services: Services;
  server: RunningServer;
  /** A system admin created with the server, who owns organization `default`. */
  admin: { email: string; password: string; token: string; userId: string; orgId: string };
  close(): Promise<void>;
}

export const adminPassword = 'admin-password-1';

/**
 * A fleetd server in this process on a fresh database of `backend`, listening on a free port of
 * 127.0.0.1, with a system admin logged in. The environment of the developer does not leak in.
 */
export async function startTestServer(backend: Backend, overrides: Partial<Record<ConfigKey, string>> = {}): Promise<TestServer> {
  const database = await backend.create();
  const data = mkdtempSync(join(tmpdir(), 'fleetd-data-'));
  const server = await startNode(database.url, data, overrides);
  try {
    const services = server.services;
    const email = 'admin@example.com';
    const user = await insertUser(services.store.db, { email, password: adminPassword, systemAdmin: true });
    const org = await services.organizations.create(systemActor, { slug: 'default', name: 'Default', ownerId: user.id });
    const tokens = await login(server.url, email, adminPassword);
    return {
      url: server.url,
      databaseUrl: database.url,
      data,
      services,
      server,
      admin: { email, password: adminPassword, token: tokens.accessToken, userId: user.id, orgId: org.id },
      async close() {
        await server.close();
        await database.drop();
        rmSync(data, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await server.close();
    await database.drop();
    throw error;
  }
}

/** One more fleetd node on an existing database, as a cluster has several: nothing is created in it. */
export async function startNode(databaseUrl: string, data: string, overrides: Partial<Record<ConfigKey, string>> = {}): Promise<RunningServer> {
  const { config } = loadConfig({
    env: {},
    cwd: data,
    flags: { port: '0', host: '127.0.0.1', rrduinoHost: '127.0.0.1', rrduinoPort: '0', logLevel: 'silent', data, database: databaseUrl, ...overrides },
  });
  return startServer(config, createLogger(config.logLevel));
}

export interface Reply<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** One HTTP request; a JSON `body` is sent as JSON, a string as it is. */
export async function request<T = any>(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.body !== undefined) {
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(base + path, { method, headers, body });
  const text = await response.text();
  let parsed: unknown = text;
  if ((response.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
  return { status: response.status, headers: response.headers, body: parsed as T };
}

export async function login(base: string, email: string, password: string): Promise<{ accessToken: string; refreshToken: string; user: { id: string } }> {
  const reply = await request(base, 'POST', '/api/auth/login', { body: { email, password } });
  if (reply.status !== 200) throw new Error(`login of ${email} failed: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body;
}

/** Creates a user who is `role` in organization `orgId`, and logs them in. */
export async function memberWithRole(
  server: TestServer,
  orgId: string,
  email: string,
  role: 'viewer' | 'operator' | 'admin' | 'owner',
): Promise<{ token: string; userId: string }> {
  const password = 'member-password-1';
  const added = await request(server.url, 'POST', `/api/orgs/${orgId}/members`, { token: server.admin.token, body: { email, role, password } });
  if (added.status !== 201) throw new Error(`adding ${email} failed: ${added.status} ${JSON.stringify(added.body)}`);
  const tokens = await login(server.url, email, password);
  return { token: tokens.accessToken, userId: tokens.user.id };
}
