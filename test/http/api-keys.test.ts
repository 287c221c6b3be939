import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { backends } from '../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../helpers/server.ts';

const keyPattern = /^fk_([0-9a-z]{12})_([0-9a-z]{40})$/;

interface CreatedKey {
  id: string;
  key: string;
  prefix: string;
  userId: string | null;
  role: string | null;
}

function assertRefused(reply: { status: number; body: any }): void {
  assert.equal(reply.status, 401, JSON.stringify(reply.body));
  assert.equal(reply.body.error.code, 'unauthenticated');
}

/** Neither the key nor its hash appears anywhere in a response that describes it. */
function assertNoSecret(body: unknown, key: CreatedKey): void {
  const secret = keyPattern.exec(key.key)![2]!;
  const text = JSON.stringify(body);
  assert.ok(!text.includes(secret), 'the secret is not in the response');
  assert.ok(!text.includes(createHash('sha256').update(secret).digest('hex')), 'the secret hash is not in the response');
  for (const item of Array.isArray((body as { items?: unknown[] }).items) ? (body as { items: object[] }).items : [body as object]) {
    assert.ok(!('key' in item) && !('secretHash' in item) && !('secret_hash' in item), `secret fields in ${JSON.stringify(item)}`);
  }
}

for (const backend of await backends()) {
  describe(`api keys [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let keysPath: string;

    /** Creates a key in `org` (default: the default organization) with `token`, expecting 201. */
    async function createKey(token: string, body: Record<string, unknown>, org?: string): Promise<CreatedKey> {
      const reply = await request(server.url, 'POST', `/api/orgs/${org ?? server.admin.orgId}/api-keys`, { token, body });
      assert.equal(reply.status, 201, JSON.stringify(reply.body));
      return reply.body;
    }

    before(async () => {
      // Throttling is tested in auth.test.ts; the keys refused here must not add up to a block.
      server = await startTestServer(backend, { throttleMaxFailures: '1000' });
      keysPath = `/api/orgs/${server.admin.orgId}/api-keys`;
    });
    after(async () => {
      await server?.close();
    });

    it('creating a key returns its secret once; reading and listing never return it', async () => {
      const created = await request(server.url, 'POST', keysPath, { token: server.admin.token, body: { name: 'ci' } });
      assert.equal(created.status, 201);
      const key: CreatedKey & Record<string, unknown> = created.body;
      const match = keyPattern.exec(key.key);
      assert.ok(match, `key ${key.key} is fk_<12>_<40>`);
      assert.equal(key.prefix, match[1]);
      assert.match(key.id, /^key_/);
      assert.equal(key.orgId, server.admin.orgId);
      assert.equal(key.name, 'ci');
      assert.equal(key.userId, server.admin.userId);
      assert.equal(key.role, 'owner', "by default the key has its user's role");
      assert.equal(key.createdBy, server.admin.userId);
      assert.equal(key.expiresAt, null);
      assert.equal(key.revokedAt, null);
      assert.ok(!('secretHash' in key) && !('secret_hash' in key));

      const got = await request(server.url, 'GET', `${keysPath}/${key.id}`, { token: server.admin.token });
      assert.equal(got.status, 200);
      assert.equal(got.body.id, key.id);
      assert.equal(got.body.prefix, key.prefix);
      assertNoSecret(got.body, key);

      const list = await request(server.url, 'GET', keysPath, { token: server.admin.token });
      assert.equal(list.status, 200);
      assert.ok(list.body.items.some((k: { id: string }) => k.id === key.id));
      assertNoSecret(list.body, key);
    });

    it('a key authenticates as "Bearer <key>" and in RDFM\'s form "Bearer token=<key>"', async () => {
      const key = await createKey(server.admin.token, { name: 'bearer' });
      const plain = await request(server.url, 'GET', '/api/orgs/default', { token: key.key });
      assert.equal(plain.status, 200);
      assert.equal(plain.body.id, server.admin.orgId);
      const rdfm = await request(server.url, 'GET', '/api/orgs/default', { headers: { authorization: `Bearer token=${key.key}` } });
      assert.equal(rdfm.status, 200);
      const got = await request(server.url, 'GET', `${keysPath}/${key.id}`, { token: server.admin.token });
      assert.notEqual(got.body.lastUsedAt, null, 'its use is recorded');
    });

    it('a key with a wrong secret is refused', async () => {
      const key = await createKey(server.admin.token, { name: 'wrong-secret' });
      assertRefused(await request(server.url, 'GET', '/api/orgs/default', { token: `fk_${key.prefix}_${'0'.repeat(40)}` }));
      assertRefused(await request(server.url, 'GET', '/api/orgs/default', { token: `${key.key}x` }));
    });

    it('a revoked key is refused, and the revocation records when and by whom', async () => {
      const key = await createKey(server.admin.token, { name: 'to-revoke' });
      assert.equal((await request(server.url, 'GET', '/api/auth/me', { token: key.key })).status, 200);
      const revoked = await request(server.url, 'DELETE', `${keysPath}/${key.id}`, { token: server.admin.token });
      assert.equal(revoked.status, 200);
      assert.equal(revoked.body.revokedBy, server.admin.userId);
      assert.ok(Date.parse(revoked.body.revokedAt) <= Date.now());
      assertNoSecret(revoked.body, key);

      assertRefused(await request(server.url, 'GET', '/api/auth/me', { token: key.key }));
      const got = await request(server.url, 'GET', `${keysPath}/${key.id}`, { token: server.admin.token });
      assert.equal(got.body.revokedAt, revoked.body.revokedAt);
      assert.equal(got.body.revokedBy, server.admin.userId);
      const revokedList = await request(server.url, 'GET', `${keysPath}?revoked=true`, { token: server.admin.token });
      assert.ok(revokedList.body.items.some((k: { id: string }) => k.id === key.id));
      const activeList = await request(server.url, 'GET', `${keysPath}?revoked=false`, { token: server.admin.token });
      assert.ok(!activeList.body.items.some((k: { id: string }) => k.id === key.id));
      // Revoking again changes nothing.
      const again = await request(server.url, 'DELETE', `${keysPath}/${key.id}`, { token: server.admin.token });
      assert.equal(again.status, 200);
      assert.equal(again.body.revokedAt, revoked.body.revokedAt);
    });

    it('an expired key is refused; a key cannot be created already expired', async () => {
      const expiresAt = new Date(Date.now() + 2000).toISOString();
      const key = await createKey(server.admin.token, { name: 'short-lived', expiresAt });
      assert.equal(key.role, 'owner');
      assert.equal((key as unknown as { expiresAt: string }).expiresAt, expiresAt);
      assert.equal((await request(server.url, 'GET', '/api/auth/me', { token: key.key })).status, 200);
      await sleep(Date.parse(expiresAt) - Date.now() + 200);
      assertRefused(await request(server.url, 'GET', '/api/auth/me', { token: key.key }));

      const past = await request(server.url, 'POST', keysPath, { token: server.admin.token, body: { name: 'past', expiresAt: new Date(Date.now() - 1000).toISOString() } });
      assert.equal(past.status, 400);
    });

    it('a viewer key cannot do admin things even though its user is owner', async () => {
      const key = await createKey(server.admin.token, { name: 'viewer-key', role: 'viewer' });
      assert.equal(key.role, 'viewer');
      assert.equal((await request(server.url, 'GET', '/api/orgs/default', { token: key.key })).status, 200);
      assert.equal((await request(server.url, 'GET', '/api/orgs/default/members', { token: key.key })).status, 200);
      const renamed = await request(server.url, 'PATCH', '/api/orgs/default', { token: key.key, body: { name: 'Renamed by key' } });
      assert.equal(renamed.status, 403);
      assert.equal(renamed.body.error.code, 'forbidden');
      const added = await request(server.url, 'POST', '/api/orgs/default/members', { token: key.key, body: { email: 'by-key@example.com', role: 'viewer', password: 'password-by-key' } });
      assert.equal(added.status, 403);
      assert.equal((await request(server.url, 'GET', '/api/orgs/default/audit', { token: key.key })).status, 403);
      // Nor does it inherit its user's system admin rights.
      assert.equal((await request(server.url, 'GET', '/api/users', { token: key.key })).status, 403);
      const org = await request(server.url, 'GET', '/api/orgs/default', { token: server.admin.token });
      assert.equal(org.body.name, 'Default');
    });

    it("a key's effective role drops when its user's role is lowered, and never exceeds the key's own role", async () => {
      const member = await memberWithRole(server, server.admin.orgId, 'key-admin@example.com', 'admin');
      const key = await createKey(member.token, { name: 'admin-key' });
      assert.equal(key.role, 'admin');
      assert.equal(key.userId, member.userId);
      const asAdmin = await request(server.url, 'PATCH', '/api/orgs/default', { token: key.key, body: { name: 'Default' } });
      assert.equal(asAdmin.status, 200);

      const lowered = await request(server.url, 'PATCH', `/api/orgs/default/members/${member.userId}`, { token: server.admin.token, body: { role: 'viewer' } });
      assert.equal(lowered.status, 200);
      const refused = await request(server.url, 'PATCH', '/api/orgs/default', { token: key.key, body: { name: 'Default' } });
      assert.equal(refused.status, 403);
      const me = await request(server.url, 'GET', '/api/auth/me', { token: key.key });
      assert.deepEqual(me.body.organizations.map((o: { role: string }) => o.role), ['viewer']);

      const raised = await request(server.url, 'PATCH', `/api/orgs/default/members/${member.userId}`, { token: server.admin.token, body: { role: 'owner' } });
      assert.equal(raised.status, 200);
      const capped = await request(server.url, 'GET', '/api/auth/me', { token: key.key });
      assert.deepEqual(capped.body.organizations.map((o: { role: string }) => o.role), ['admin']);
      assert.equal((await request(server.url, 'DELETE', '/api/orgs/default', { token: key.key })).status, 403);
    });

    it('a key cannot be created above its user\'s role or the creator\'s role', async () => {
      const member = await memberWithRole(server, server.admin.orgId, 'key-operator@example.com', 'operator');
      const above = await request(server.url, 'POST', keysPath, { token: member.token, body: { name: 'too-strong', role: 'admin' } });
      assert.equal(above.status, 403);
      const forOwner = await request(server.url, 'POST', keysPath, { token: server.admin.token, body: { name: 'for-operator', userId: member.userId, role: 'owner' } });
      assert.equal(forOwner.status, 403);
    });

    it('removing a member revokes their keys', async () => {
      const member = await memberWithRole(server, server.admin.orgId, 'leaving@example.com', 'operator');
      const key = await createKey(member.token, { name: 'leaving-key' });
      assert.equal((await request(server.url, 'GET', '/api/orgs/default', { token: key.key })).status, 200);
      const removed = await request(server.url, 'DELETE', `/api/orgs/default/members/${member.userId}`, { token: server.admin.token });
      assert.equal(removed.status, 204);
      assertRefused(await request(server.url, 'GET', '/api/orgs/default', { token: key.key }));
      const got = await request(server.url, 'GET', `${keysPath}/${key.id}`, { token: server.admin.token });
      assert.equal(got.status, 200);
      assert.notEqual(got.body.revokedAt, null);
      assert.equal(got.body.revokedBy, 'membership.removed');

      // Coming back does not bring the old key back.
      const readded = await request(server.url, 'POST', '/api/orgs/default/members', { token: server.admin.token, body: { email: 'leaving@example.com', role: 'operator' } });
      assert.equal(readded.status, 201);
      assertRefused(await request(server.url, 'GET', '/api/orgs/default', { token: key.key }));
    });

    it('API keys cannot create API keys', async () => {
      const key = await createKey(server.admin.token, { name: 'owner-key' });
      const attempt = await request(server.url, 'POST', keysPath, { token: key.key, body: { name: 'child' } });
      assert.equal(attempt.status, 403);
      assert.equal(attempt.body.error.code, 'forbidden');
      const list = await request(server.url, 'GET', keysPath, { token: server.admin.token });
      assert.ok(!list.body.items.some((k: { name: string }) => k.name === 'child'));
    });

    it('members who are not admins see and manage only their own keys; admins see all', async () => {
      const viewer = await memberWithRole(server, server.admin.orgId, 'own-viewer@example.com', 'viewer');
      const operator = await memberWithRole(server, server.admin.orgId, 'own-operator@example.com', 'operator');
      const orgAdmin = await memberWithRole(server, server.admin.orgId, 'own-admin@example.com', 'admin');
      const viewerKey = await createKey(viewer.token, { name: 'viewer-own' });
      const operatorKey = await createKey(operator.token, { name: 'operator-own' });

      const viewerList = await request(server.url, 'GET', keysPath, { token: viewer.token });
      assert.equal(viewerList.status, 200);
      assert.deepEqual(viewerList.body.items.map((k: { id: string }) => k.id), [viewerKey.id]);
      // Asking for someone else's keys still shows only one's own.
      const filtered = await request(server.url, 'GET', `${keysPath}?userId=${operator.userId}`, { token: viewer.token });
      assert.deepEqual(filtered.body.items.map((k: { id: string }) => k.id), [viewerKey.id]);
      // The viewer's own key sees the same.
      const byKey = await request(server.url, 'GET', keysPath, { token: viewerKey.key });
      assert.deepEqual(byKey.body.items.map((k: { id: string }) => k.id), [viewerKey.id]);

      assert.equal((await request(server.url, 'GET', `${keysPath}/${operatorKey.id}`, { token: viewer.token })).status, 404);
      assert.equal((await request(server.url, 'DELETE', `${keysPath}/${operatorKey.id}`, { token: viewer.token })).status, 404);
      assert.equal((await request(server.url, 'POST', keysPath, { token: viewer.token, body: { name: 'for-other', userId: operator.userId } })).status, 403);
      assert.equal((await request(server.url, 'GET', '/api/auth/me', { token: operatorKey.key })).status, 200);

      const adminList = await request(server.url, 'GET', keysPath, { token: orgAdmin.token });
      const ids = adminList.body.items.map((k: { id: string }) => k.id);
      assert.ok(ids.includes(viewerKey.id) && ids.includes(operatorKey.id));
      assert.ok(adminList.body.items.some((k: { userId: string }) => k.userId === server.admin.userId));
      const adminFiltered = await request(server.url, 'GET', `${keysPath}?userId=${operator.userId}`, { token: orgAdmin.token });
      assert.deepEqual(adminFiltered.body.items.map((k: { id: string }) => k.id), [operatorKey.id]);
      // An admin may revoke anyone's key.
      assert.equal((await request(server.url, 'DELETE', `${keysPath}/${operatorKey.id}`, { token: orgAdmin.token })).status, 200);
      assertRefused(await request(server.url, 'GET', '/api/auth/me', { token: operatorKey.key }));
    });

    it("a key of one organization gets 404 on another organization and its keys, even when its user is an owner there", async () => {
      const other = await request(server.url, 'POST', '/api/orgs', { token: server.admin.token, body: { slug: 'other', name: 'Other' } });
      assert.equal(other.status, 201);
      const otherKey = await createKey(server.admin.token, { name: 'other-key' }, other.body.id);
      const key = await createKey(server.admin.token, { name: 'default-only' });

      for (const path of [`/api/orgs/${other.body.id}`, '/api/orgs/other', `/api/orgs/${other.body.id}/api-keys`, `/api/orgs/${other.body.id}/api-keys/${otherKey.id}`, '/api/orgs/other/members']) {
        const reply = await request(server.url, 'GET', path, { token: key.key });
        assert.equal(reply.status, 404, path);
        assert.equal(reply.body.error.code, 'not_found');
      }
      assert.equal((await request(server.url, 'DELETE', `/api/orgs/other/api-keys/${otherKey.id}`, { token: key.key })).status, 404);
      const list = await request(server.url, 'GET', '/api/orgs', { token: key.key });
      assert.deepEqual(list.body.items.map((o: { slug: string }) => o.slug), ['default']);
      // The key of the other organization works there, and not in the default one.
      assert.equal((await request(server.url, 'GET', '/api/orgs/other', { token: otherKey.key })).status, 200);
      assert.equal((await request(server.url, 'GET', '/api/orgs/default', { token: otherKey.key })).status, 404);
      // A key of the other organization cannot be read through the default one.
      assert.equal((await request(server.url, 'GET', `${keysPath}/${otherKey.id}`, { token: server.admin.token })).status, 404);
    });
  });
}
