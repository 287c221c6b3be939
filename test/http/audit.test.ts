import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { AuditEvent } from '../../src/services/audit.ts';
import { backends } from '../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type Reply, type TestServer } from '../helpers/server.ts';

/** The audit log: every management change, who made it, from where, in which request; and how it is read. */

const requestId = () => `audit-test.${randomBytes(6).toString('hex')}`;

for (const backend of await backends()) {
  describe(`audit [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    const admin = () => server.admin.token;
    const adminRef = () => ({ type: 'user', id: server.admin.userId });

    /** A request sent with its own X-Request-Id; the id comes back with the reply. */
    async function traced(method: string, path: string, token: string | undefined, body?: unknown) {
      const id = requestId();
      const reply = await request(server.url, method, path, { token, body, headers: { 'x-request-id': id } });
      assert.ok(reply.status < 300, `${method} ${path}: ${reply.status} ${JSON.stringify(reply.body)}`);
      assert.equal(reply.headers.get('x-request-id'), id);
      return { id, body: reply.body };
    }

    /** Every page of an audit listing, following nextCursor. */
    async function all(path: string, token = admin(), limit = 500): Promise<AuditEvent[]> {
      const events: AuditEvent[] = [];
      let cursor: string | null = null;
      do {
        const separator = path.includes('?') ? '&' : '?';
        const page: Reply = await request(server.url, 'GET', `${path}${separator}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { token });
        assert.equal(page.status, 200, JSON.stringify(page.body));
        events.push(...page.body.items);
        cursor = page.body.nextCursor;
      } while (cursor);
      return events;
    }

    /** The one event `action` of request `id`, checked for actor, target, organization, address and time. */
    async function expectEvent(id: string, action: string, expected: { actor: { type: string; id: string }; target: { type: string; id: string }; orgId: string | null }) {
      const events = (await all(`/api/audit?action=${encodeURIComponent(action)}`)).filter((e) => e.requestId === id);
      assert.equal(events.length, 1, `one ${action} event for request ${id}, found ${events.length}`);
      const event = events[0]!;
      assert.equal(event.action, action);
      assert.deepEqual(event.actor, expected.actor, `${action} actor`);
      assert.deepEqual(event.target, expected.target, `${action} target`);
      assert.equal(event.orgId, expected.orgId, `${action} organization`);
      assert.equal(event.ip, '127.0.0.1', `${action} ip`);
      assert.ok(Math.abs(Date.parse(event.at) - Date.now()) < 60_000, `${action} at ${event.at}`);
      return event;
    }

    before(async () => {
      server = await startTestServer(backend);
    });
    after(async () => {
      await server?.close();
    });

    it('organization create, update and delete are recorded', async () => {
      const create = await traced('POST', '/api/orgs', admin(), { slug: 'audited', name: 'Audited' });
      const org = create.body.id as string;
      const ref = { type: 'org', id: org };
      const created = await expectEvent(create.id, 'org.create', { actor: adminRef(), target: ref, orgId: org });
      assert.equal(created.details?.slug, 'audited');
      const update = await traced('PATCH', `/api/orgs/${org}`, admin(), { name: 'Audited again' });
      const updated = await expectEvent(update.id, 'org.update', { actor: adminRef(), target: ref, orgId: org });
      assert.equal(updated.details?.name, 'Audited again');
      const remove = await traced('DELETE', `/api/orgs/${org}`, admin());
      await expectEvent(remove.id, 'org.delete', { actor: adminRef(), target: ref, orgId: org });
      // The organization is gone; its history is not.
      const history = await all(`/api/audit?orgId=${org}`);
      assert.deepEqual(history.map((e) => e.action), ['org.create', 'org.update', 'org.delete']);
    });

    it('member add, update and remove are recorded, and a user created on the way too', async () => {
      const org = server.admin.orgId;
      const add = await traced('POST', `/api/orgs/${org}/members`, admin(), { email: 'audited-member@example.com', role: 'viewer', password: 'member-password-1' });
      const userId = add.body.user.id as string;
      const target = { type: 'user', id: userId };
      await expectEvent(add.id, 'user.create', { actor: adminRef(), target, orgId: org });
      const added = await expectEvent(add.id, 'member.add', { actor: adminRef(), target, orgId: org });
      assert.equal(added.details?.role, 'viewer');
      const update = await traced('PATCH', `/api/orgs/${org}/members/${userId}`, admin(), { role: 'operator' });
      const updated = await expectEvent(update.id, 'member.update', { actor: adminRef(), target, orgId: org });
      assert.deepEqual(updated.details, { from: 'viewer', to: 'operator' });
      const remove = await traced('DELETE', `/api/orgs/${org}/members/${userId}`, admin());
      await expectEvent(remove.id, 'member.remove', { actor: adminRef(), target, orgId: org });
      // Adding an existing user creates no user.
      const again = await traced('POST', `/api/orgs/${org}/members`, admin(), { email: 'audited-member@example.com', role: 'viewer' });
      await expectEvent(again.id, 'member.add', { actor: adminRef(), target, orgId: org });
      assert.equal((await all('/api/audit?action=user.create')).filter((e) => e.requestId === again.id).length, 0);
    });

    it('user create, update (by an admin and by the user) and delete are recorded without secrets', async () => {
      const create = await traced('POST', '/api/users', admin(), { email: 'audited-user@example.com', password: 'user-password-1' });
      const userId = create.body.id as string;
      const target = { type: 'user', id: userId };
      const created = await expectEvent(create.id, 'user.create', { actor: adminRef(), target, orgId: null });
      assert.equal(created.details?.email, 'audited-user@example.com');
      const byAdmin = await traced('PATCH', `/api/users/${userId}`, admin(), { name: 'Renamed by admin', password: 'reset-password-1' });
      const adminUpdate = await expectEvent(byAdmin.id, 'user.update', { actor: adminRef(), target, orgId: null });
      assert.equal(adminUpdate.details?.password, 'changed');
      const login = await traced('POST', '/api/auth/login', undefined, { email: 'audited-user@example.com', password: 'reset-password-1' });
      const self = await traced('PATCH', `/api/users/${userId}`, login.body.accessToken, { password: 'own-password-1', currentPassword: 'reset-password-1' });
      const selfUpdate = await expectEvent(self.id, 'user.update', { actor: target, target, orgId: null });
      const serialized = JSON.stringify(selfUpdate);
      for (const secret of ['reset-password-1', 'own-password-1']) assert.ok(!serialized.includes(secret), 'no password in the audit log');
      const remove = await traced('DELETE', `/api/users/${userId}`, admin());
      await expectEvent(remove.id, 'user.delete', { actor: adminRef(), target, orgId: null });
    });

    it('API key create and revoke are recorded, with a key as the actor when a key acts', async () => {
      const org = server.admin.orgId;
      const create = await traced('POST', `/api/orgs/${org}/api-keys`, admin(), { name: 'audited key' });
      const keyId = create.body.id as string;
      const created = await expectEvent(create.id, 'api_key.create', { actor: adminRef(), target: { type: 'api_key', id: keyId }, orgId: org });
      assert.ok(!JSON.stringify(created).includes(create.body.key), 'no key secret in the audit log');
      const other = await traced('POST', `/api/orgs/${org}/api-keys`, admin(), { name: 'revoked by a key' });
      const revokeByKey = await traced('DELETE', `/api/orgs/${org}/api-keys/${other.body.id}`, create.body.key);
      await expectEvent(revokeByKey.id, 'api_key.revoke', { actor: { type: 'api_key', id: keyId }, target: { type: 'api_key', id: other.body.id }, orgId: org });
      const revoke = await traced('DELETE', `/api/orgs/${org}/api-keys/${keyId}`, admin());
      await expectEvent(revoke.id, 'api_key.revoke', { actor: adminRef(), target: { type: 'api_key', id: keyId }, orgId: org });
    });

    it('login and logout are recorded', async () => {
      const login = await traced('POST', '/api/auth/login', undefined, { email: server.admin.email, password: server.admin.password });
      const session = (await request(server.url, 'GET', '/api/auth/me', { token: login.body.accessToken })).body.sessionId as string;
      assert.ok(session);
      await expectEvent(login.id, 'auth.login', { actor: adminRef(), target: { type: 'session', id: session }, orgId: null });
      const logout = await traced('POST', '/api/auth/logout', login.body.accessToken);
      await expectEvent(logout.id, 'auth.logout', { actor: adminRef(), target: { type: 'session', id: session }, orgId: null });
      // A failed login changes nothing to audit.
      const events = (await all('/api/audit')).length;
      const failed = await request(server.url, 'POST', '/api/auth/login', { body: { email: server.admin.email, password: 'wrong-password' } });
      assert.equal(failed.status, 401);
      assert.equal((await all('/api/audit')).length, events);
    });

    describe('reading', () => {
      let org: string;
      let owner: { token: string; userId: string };
      let start: string;
      let between: string;
      const first: string[] = [];
      const second: string[] = [];

      before(async () => {
        org = (await traced('POST', '/api/orgs', admin(), { slug: 'paged', name: 'Paged 0' })).body.id;
        owner = await memberWithRole(server, org, 'paged-owner@example.com', 'owner');
        await sleep(5);
        start = new Date().toISOString();
        await sleep(5);
        for (let i = 1; i <= 12; i++) first.push((await traced('PATCH', `/api/orgs/${org}`, owner.token, { name: `Paged ${i}` })).id);
        await sleep(5);
        between = new Date().toISOString();
        await sleep(5);
        for (let i = 13; i <= 23; i++) second.push((await traced('PATCH', `/api/orgs/${org}`, admin(), { name: `Paged ${i}` })).id);
      });

      it('pages through the organization log with the cursor, oldest first, without duplicates or gaps', async () => {
        const whole = await all(`/api/orgs/${org}/audit`);
        assert.ok(whole.length >= 26, `${whole.length} events`);
        for (const limit of [1, 5, 7, 25]) {
          const paged = await all(`/api/orgs/${org}/audit`, admin(), limit);
          assert.deepEqual(paged.map((e) => e.id), whole.map((e) => e.id), `limit ${limit}`);
        }
        const ids = whole.map((e) => e.id);
        assert.equal(new Set(ids).size, ids.length, 'no duplicates');
        assert.deepEqual([...ids].sort(), ids, 'oldest first');
        assert.ok(whole.every((e) => e.orgId === org));
        const updates = whole.filter((e) => e.action === 'org.update').map((e) => e.requestId);
        assert.deepEqual(updates, [...first, ...second]);
        const last = await request(server.url, 'GET', `/api/orgs/${org}/audit?limit=${whole.length}`, { token: admin() });
        assert.equal(last.body.nextCursor, null, 'no cursor after the last page');
      });

      it('filters by action, actor, target type and time, across pages', async () => {
        const updates = await all(`/api/orgs/${org}/audit?action=org.update`, admin(), 4);
        assert.deepEqual(updates.map((e) => e.requestId), [...first, ...second]);
        const byOwner = await all(`/api/orgs/${org}/audit?actorId=${owner.userId}`, admin(), 5);
        assert.deepEqual(byOwner.map((e) => e.requestId), first);
        const byAdmin = await all(`/api/orgs/${org}/audit?actorId=${server.admin.userId}&action=org.update`, admin(), 5);
        assert.deepEqual(byAdmin.map((e) => e.requestId), second);
        const users = await all(`/api/orgs/${org}/audit?targetType=user`);
        assert.ok(users.length >= 2 && users.every((e) => e.target.type === 'user'));
        assert.deepEqual(users.map((e) => e.action).sort(), ['member.add', 'user.create']);
        const orgTargets = await all(`/api/orgs/${org}/audit?targetType=org&targetId=${org}`);
        assert.equal(orgTargets.length, 24);
        const since = await all(`/api/orgs/${org}/audit?since=${encodeURIComponent(between)}`, admin(), 3);
        assert.deepEqual(since.map((e) => e.requestId), second);
        const window = await all(`/api/orgs/${org}/audit?since=${encodeURIComponent(start)}&until=${encodeURIComponent(between)}`, admin(), 5);
        assert.deepEqual(window.map((e) => e.requestId), first);
        const until = await all(`/api/orgs/${org}/audit?until=${encodeURIComponent(start)}`);
        assert.ok(until.length >= 3 && until.every((e) => Date.parse(e.at) < Date.parse(start)));
        assert.deepEqual(await all(`/api/orgs/${org}/audit?action=no.such.action`), []);
      });

      it('the system log holds every organization and the system events, and filters by organization', async () => {
        const everything = await all('/api/audit', admin(), 50);
        const ids = everything.map((e) => e.id);
        assert.equal(new Set(ids).size, ids.length);
        assert.ok(everything.some((e) => e.orgId === null && e.action === 'auth.login'));
        assert.ok(everything.some((e) => e.orgId === server.admin.orgId));
        const paged = await all(`/api/audit?orgId=${org}`, admin(), 6);
        assert.deepEqual(paged.map((e) => e.id), (await all(`/api/orgs/${org}/audit`)).map((e) => e.id));
        const logins = await all(`/api/audit?action=auth.login&actorId=${owner.userId}`);
        assert.equal(logins.length, 1);
      });

      it('only admins read the organization log; only system admins the system log', async () => {
        const viewer = await memberWithRole(server, org, 'paged-viewer@example.com', 'viewer');
        const operator = await memberWithRole(server, org, 'paged-operator@example.com', 'operator');
        const orgAdmin = await memberWithRole(server, org, 'paged-admin@example.com', 'admin');
        for (const token of [viewer.token, operator.token]) {
          const refused = await request(server.url, 'GET', `/api/orgs/${org}/audit`, { token });
          assert.equal(refused.status, 403);
          assert.equal(refused.body.error.code, 'forbidden');
        }
        assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/audit`, { token: orgAdmin.token })).status, 200);
        assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/audit`, { token: owner.token })).status, 200);
        // A member of another organization does not learn this one exists.
        const outsider = await memberWithRole(server, server.admin.orgId, 'paged-outsider@example.com', 'owner');
        assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/audit`, { token: outsider.token })).status, 404);
        const key = (await request(server.url, 'POST', `/api/orgs/${org}/api-keys`, { token: orgAdmin.token, body: { name: 'auditor' } })).body.key as string;
        assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/audit`, { token: key })).status, 200);
        for (const token of [viewer.token, orgAdmin.token, owner.token, key]) {
          const refused = await request(server.url, 'GET', '/api/audit', { token });
          assert.equal(refused.status, 403);
          assert.equal(refused.body.error.code, 'forbidden');
        }
        // The organization log cannot be pointed at another organization.
        const elsewhere = await request(server.url, 'GET', `/api/orgs/${org}/audit?orgId=${server.admin.orgId}`, { token: orgAdmin.token });
        assert.equal(elsewhere.status, 400);
        assert.equal(elsewhere.body.error.details[0].field, 'orgId');
      });
    });
  });
}
