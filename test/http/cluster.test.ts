import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { RunningServer } from '../../src/server.ts';
import { backends } from '../helpers/backends.ts';
import { busBackends, natsTestUrl } from '../hub/buses.ts';
import { request, startNode, startTestServer, type TestServer } from '../helpers/server.ts';

/** Several fleetd nodes on one database agree on who is who: what a cluster relies on. */
for (const backend of await backends()) {
  describe(`several nodes on one database [${backend.name}]`, { skip: backend.skip }, () => {
    let first: TestServer;
    let cached: RunningServer;
    let uncached: RunningServer;
    let data: string;

    before(async () => {
      first = await startTestServer(backend, { cacheTtl: '1', throttleMaxFailures: '4' });
      data = mkdtempSync(join(tmpdir(), 'fleetd-node-'));
      cached = await startNode(first.databaseUrl, data, { cacheTtl: '1', throttleMaxFailures: '4' });
      uncached = await startNode(first.databaseUrl, data, { cacheTtl: '0', throttleMaxFailures: '4' });
    });
    after(async () => {
      await uncached?.close();
      await cached?.close();
      await first?.close();
      rmSync(data, { recursive: true, force: true });
    });

    it('a token issued by one node is accepted by the others', async () => {
      for (const node of [cached, uncached]) {
        const me = await request(node.url, 'GET', '/api/auth/me', { token: first.admin.token });
        assert.equal(me.status, 200);
        assert.equal(me.body.user.email, first.admin.email);
      }
    });

    it('a key revoked on one node is refused there at once, and by the others within cacheTtl', async () => {
      const created = await request(first.url, 'POST', `/api/orgs/${first.admin.orgId}/api-keys`, { token: first.admin.token, body: { name: 'shared' } });
      const key = created.body.key as string;
      for (const node of [first.server, cached, uncached]) assert.equal((await request(node.url, 'GET', '/api/auth/me', { token: key })).status, 200);

      assert.equal((await request(first.url, 'DELETE', `/api/orgs/${first.admin.orgId}/api-keys/${created.body.id}`, { token: first.admin.token })).status, 200);
      assert.equal((await request(first.url, 'GET', '/api/auth/me', { token: key })).status, 401);
      assert.equal((await request(uncached.url, 'GET', '/api/auth/me', { token: key })).status, 401);
      await sleep(1100);
      assert.equal((await request(cached.url, 'GET', '/api/auth/me', { token: key })).status, 401);
    });

    it('an organization renamed on one node reads renamed there at once, and on the others within cacheTtl', async () => {
      const path = `/api/orgs/${first.admin.orgId}`;
      for (const node of [cached, uncached]) assert.equal((await request(node.url, 'GET', path, { token: first.admin.token })).body.name, 'Default');
      assert.equal((await request(first.url, 'PATCH', path, { token: first.admin.token, body: { name: 'Renamed' } })).status, 200);
      assert.equal((await request(first.url, 'GET', path, { token: first.admin.token })).body.name, 'Renamed');
      assert.equal((await request(uncached.url, 'GET', path, { token: first.admin.token })).body.name, 'Renamed');
      await sleep(1100);
      assert.equal((await request(cached.url, 'GET', path, { token: first.admin.token })).body.name, 'Renamed');
    });

    it('failed logins from one address count together across nodes', async () => {
      const attempt = (url: string, password: string) => request(url, 'POST', '/api/auth/login', { body: { email: first.admin.email, password } });
      for (const node of [first.server, cached, uncached]) assert.equal((await attempt(node.url, 'wrong-password')).status, 401);
      assert.equal((await attempt(first.url, 'wrong-password')).status, 429, 'the fourth failure, on any node, blocks');
      const blocked = await attempt(cached.url, first.admin.password);
      assert.equal(blocked.status, 429);
      assert.ok(Number(blocked.headers.get('retry-after')) > 0);
    });
  });
}

/** Nodes joined by NATS forget cached identity data as soon as another node commits a change. */
const nats = (await busBackends()).find((b) => b.name === 'nats')!;
for (const backend of await backends()) {
  describe(`several nodes joined by NATS [${backend.name}]`, { skip: backend.skip ?? nats.skip }, () => {
    let first: TestServer;
    let second: RunningServer;
    let data: string;
    // Long enough that only the bus can explain a change seen within the test.
    const overrides = { cacheTtl: '300', bus: natsTestUrl };

    before(async () => {
      first = await startTestServer(backend, overrides);
      data = mkdtempSync(join(tmpdir(), 'fleetd-node-'));
      second = await startNode(first.databaseUrl, data, overrides);
    });
    after(async () => {
      await second?.close();
      await first?.close();
      if (data) rmSync(data, { recursive: true, force: true });
    });

    it('a key revoked on one node is refused by the others at once', async () => {
      const created = await request(first.url, 'POST', `/api/orgs/${first.admin.orgId}/api-keys`, { token: first.admin.token, body: { name: 'shared' } });
      const key = created.body.key as string;
      assert.equal((await request(second.url, 'GET', '/api/auth/me', { token: key })).status, 200);
      assert.equal((await request(first.url, 'DELETE', `/api/orgs/${first.admin.orgId}/api-keys/${created.body.id}`, { token: first.admin.token })).status, 200);
      let status = 200;
      for (let tries = 0; tries < 50 && status === 200; tries++) {
        await sleep(20);
        status = (await request(second.url, 'GET', '/api/auth/me', { token: key })).status;
      }
      assert.equal(status, 401, 'refused within a second, far below cacheTtl');
    });
  });
}
