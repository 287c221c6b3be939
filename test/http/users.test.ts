import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends } from '../helpers/backends.ts';
import { login, request, startTestServer, type TestServer } from '../helpers/server.ts';

/** Users: managed by system admins; each user keeps their own name and password. */

interface User {
  id: string;
  email: string;
  name: string;
  systemAdmin: boolean;
}

for (const backend of await backends()) {
  describe(`users [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    const admin = () => server.admin.token;
    const call = (method: string, path: string, token: string | undefined, body?: unknown) => request(server.url, method, path, { token, body });

    async function createUser(email: string, password: string, extra: { name?: string; systemAdmin?: boolean } = {}): Promise<User> {
      const reply = await call('POST', '/api/users', admin(), { email, password, ...extra });
      assert.equal(reply.status, 201, JSON.stringify(reply.body));
      return reply.body;
    }

    async function listAll(query: string, limit: number): Promise<User[]> {
      const users: User[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const reply = await call('GET', `/api/users?${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, admin());
        assert.equal(reply.status, 200, JSON.stringify(reply.body));
        assert.ok(reply.body.items.length <= limit);
        users.push(...reply.body.items);
        cursor = reply.body.nextCursor;
        assert.ok(++pages < 100, 'pagination ends');
      } while (cursor);
      return users;
    }

    before(async () => {
      server = await startTestServer(backend);
    });
    after(async () => {
      await server?.close();
    });

    it('the last system admin may not be deleted or demoted (409)', async () => {
      const id = server.admin.userId;
      const remove = await call('DELETE', `/api/users/${id}`, admin());
      assert.equal(remove.status, 409);
      assert.equal(remove.body.error.code, 'conflict');
      const demote = await call('PATCH', `/api/users/${id}`, admin(), { systemAdmin: false });
      assert.equal(demote.status, 409);
      assert.equal(demote.body.error.code, 'conflict');
      const still = await call('GET', `/api/users/${id}`, admin());
      assert.equal(still.body.systemAdmin, true);
      assert.equal((await call('GET', '/api/users?limit=10', admin())).status, 200);

      // With a second system admin, either may go.
      const second = await createUser('second-admin@example.com', 'second-admin-password', { systemAdmin: true });
      assert.equal(second.systemAdmin, true);
      const secondToken = (await login(server.url, 'second-admin@example.com', 'second-admin-password')).accessToken;
      assert.equal((await call('GET', '/api/users', secondToken)).status, 200);
      const demoted = await call('PATCH', `/api/users/${second.id}`, admin(), { systemAdmin: false });
      assert.equal(demoted.status, 200);
      assert.equal(demoted.body.systemAdmin, false);
      assert.equal((await call('GET', '/api/users', secondToken)).status, 403, 'a demoted admin loses the power at once');
      // Back to one: the last one stays.
      assert.equal((await call('DELETE', `/api/users/${id}`, admin())).status, 409);
      const promoted = await call('PATCH', `/api/users/${second.id}`, admin(), { systemAdmin: true });
      assert.equal(promoted.body.systemAdmin, true);
      const removed = await call('DELETE', `/api/users/${second.id}`, admin());
      assert.equal(removed.status, 204);
      assert.equal((await call('PATCH', `/api/users/${id}`, admin(), { systemAdmin: false })).status, 409);
    });

    it('a system admin creates users', async () => {
      const user = await createUser('Mixed.Case@Example.COM', 'created-password-1', { name: 'Mixed Case' });
      assert.equal(user.email, 'mixed.case@example.com');
      assert.equal(user.name, 'Mixed Case');
      assert.equal(user.systemAdmin, false);
      assert.match(user.id, /^usr_/);
      assert.ok(!('password' in user) && !('passwordHash' in user));
      const defaulted = await createUser('no-name@example.com', 'created-password-1');
      assert.equal(defaulted.name, 'no-name');
      const twice = await call('POST', '/api/users', admin(), { email: 'MIXED.case@example.com', password: 'created-password-1' });
      assert.equal(twice.status, 409);
      assert.equal(twice.body.error.code, 'conflict');
      const fetched = await call('GET', `/api/users/${user.id}`, admin());
      assert.deepEqual(fetched.body, user);
      const loggedIn = await login(server.url, 'mixed.case@example.com', 'created-password-1');
      assert.equal(loggedIn.user.id, user.id);
    });

    it('a system admin lists users, filtered by text, page by page', async () => {
      const made: User[] = [];
      for (let i = 1; i <= 7; i++) made.push(await createUser(`listed-${i}@example.com`, 'listed-password-1', { name: `Listed Person ${i}` }));
      await createUser('unrelated@example.com', 'listed-password-1', { name: 'Somebody Else' });

      const byEmail = await listAll('q=listed-', 3);
      assert.deepEqual(byEmail.map((u) => u.id), made.map((u) => u.id));
      const byName = await listAll(`q=${encodeURIComponent('PERSON')}`, 2);
      assert.deepEqual(byName.map((u) => u.id), made.map((u) => u.id));
      assert.deepEqual((await listAll('q=listed-3', 10)).map((u) => u.email), ['listed-3@example.com']);
      // The text is text: LIKE wildcards match only themselves.
      assert.deepEqual(await listAll(`q=${encodeURIComponent('%')}`, 10), []);
      assert.deepEqual(await listAll(`q=${encodeURIComponent('listed_1')}`, 10), []);

      const everyone = await listAll('', 500);
      for (const limit of [1, 3, 4]) {
        const paged = await listAll('', limit);
        const ids = paged.map((u) => u.id);
        assert.equal(new Set(ids).size, ids.length, `no duplicates with limit ${limit}`);
        assert.deepEqual(ids, everyone.map((u) => u.id), `no gaps with limit ${limit}`);
      }
      const first = await call('GET', '/api/users?limit=3', admin());
      assert.equal(first.body.items.length, 3);
      assert.equal(typeof first.body.nextCursor, 'string');
      const admins = await listAll('systemAdmin=true', 10);
      assert.deepEqual(admins.map((u) => u.id), [server.admin.userId]);
    });

    it('a system admin deletes a user: their sessions end and they are gone', async () => {
      const user = await createUser('doomed@example.com', 'doomed-password-1');
      const session = await login(server.url, 'doomed@example.com', 'doomed-password-1');
      assert.equal((await call('GET', '/api/auth/me', session.accessToken)).status, 200);
      const removed = await call('DELETE', `/api/users/${user.id}`, admin());
      assert.equal(removed.status, 204);
      assert.equal((await call('GET', `/api/users/${user.id}`, admin())).status, 404);
      assert.equal((await call('DELETE', `/api/users/${user.id}`, admin())).status, 404);
      assert.ok(!(await listAll('q=doomed', 10)).length);
      assert.equal((await call('GET', '/api/auth/me', session.accessToken)).status, 401);
      const again = await request(server.url, 'POST', '/api/auth/login', { body: { email: 'doomed@example.com', password: 'doomed-password-1' } });
      assert.equal(again.status, 401);
      const refreshed = await request(server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: session.refreshToken } });
      assert.equal(refreshed.status, 401);
    });

    it('a user changes their own name, and nobody else\'s', async () => {
      const user = await createUser('renamer@example.com', 'renamer-password-1');
      const other = await createUser('bystander@example.com', 'bystander-password-1', { name: 'Bystander' });
      const { accessToken } = await login(server.url, 'renamer@example.com', 'renamer-password-1');
      const renamed = await call('PATCH', `/api/users/${user.id}`, accessToken, { name: 'New Name' });
      assert.equal(renamed.status, 200);
      assert.equal(renamed.body.name, 'New Name');
      assert.equal((await call('GET', `/api/users/${user.id}`, accessToken)).body.name, 'New Name');
      assert.equal((await call('GET', '/api/auth/me', accessToken)).body.user.name, 'New Name');
      const meddle = await call('PATCH', `/api/users/${other.id}`, accessToken, { name: 'Meddled' });
      assert.equal(meddle.status, 404);
      assert.equal((await call('GET', `/api/users/${other.id}`, admin())).body.name, 'Bystander');
      const promote = await call('PATCH', `/api/users/${user.id}`, accessToken, { systemAdmin: true });
      assert.equal(promote.status, 403);
      assert.equal((await call('GET', `/api/users/${user.id}`, admin())).body.systemAdmin, false);
      assert.equal((await call('GET', '/api/users', accessToken)).status, 403);
      assert.equal((await call('DELETE', `/api/users/${other.id}`, accessToken)).status, 403);
    });

    it('a new password needs the current one and ends the other sessions, not this one', async () => {
      const user = await createUser('rotator@example.com', 'first-password-1');
      const current = await login(server.url, 'rotator@example.com', 'first-password-1');
      const other = await login(server.url, 'rotator@example.com', 'first-password-1');
      const path = `/api/users/${user.id}`;

      const missing = await call('PATCH', path, current.accessToken, { password: 'second-password-1' });
      assert.equal(missing.status, 400);
      assert.equal(missing.body.error.details[0].field, 'currentPassword');
      const wrong = await call('PATCH', path, current.accessToken, { password: 'second-password-1', currentPassword: 'not-the-password' });
      assert.equal(wrong.status, 400);
      assert.equal(wrong.body.error.code, 'validation_failed');
      assert.equal(wrong.body.error.details[0].field, 'currentPassword');
      // Refused: both sessions still work and the old password still logs in.
      assert.equal((await call('GET', '/api/auth/me', other.accessToken)).status, 200);
      await login(server.url, 'rotator@example.com', 'first-password-1');

      const changed = await call('PATCH', path, current.accessToken, { password: 'second-password-1', currentPassword: 'first-password-1' });
      assert.equal(changed.status, 200);
      const me = await call('GET', '/api/auth/me', current.accessToken);
      assert.equal(me.status, 200, 'the session that changed the password keeps working');
      assert.equal(me.body.user.id, user.id);
      const ended = await call('GET', '/api/auth/me', other.accessToken);
      assert.equal(ended.status, 401, "another login's access token is refused");
      assert.equal(ended.body.error.code, 'unauthenticated');
      const refreshed = await request(server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: other.refreshToken } });
      assert.equal(refreshed.status, 401, "another login's refresh token is refused");
      const stillRefreshes = await request(server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: current.refreshToken } });
      assert.equal(stillRefreshes.status, 200);

      const old = await request(server.url, 'POST', '/api/auth/login', { body: { email: 'rotator@example.com', password: 'first-password-1' } });
      assert.equal(old.status, 401);
      const fresh = await login(server.url, 'rotator@example.com', 'second-password-1');

      // A system admin sets a password without the current one, and every session of the user ends.
      const reset = await call('PATCH', path, admin(), { password: 'third-password-1' });
      assert.equal(reset.status, 200);
      assert.equal((await call('GET', '/api/auth/me', fresh.accessToken)).status, 401);
      assert.equal((await call('GET', '/api/auth/me', stillRefreshes.body.accessToken)).status, 401);
      assert.equal((await call('GET', '/api/auth/me', admin())).status, 200, "the admin's own session is untouched");
      await login(server.url, 'rotator@example.com', 'third-password-1');
    });

    it('two system admins demoting or deleting each other at once leave one', async () => {
      const db = server.services.store.db;
      for (let round = 0; round < 4; round++) {
        const [x, y] = [await createUser(`racer-x-${round}@example.com`, 'racing-password-1', { systemAdmin: true }), await createUser(`racer-y-${round}@example.com`, 'racing-password-1', { systemAdmin: true })];
        const xToken = (await login(server.url, x.email, 'racing-password-1')).accessToken;
        const yToken = (await login(server.url, y.email, 'racing-password-1')).accessToken;
        // The test server's admin steps aside so that x and y are the only two.
        assert.equal((await call('PATCH', `/api/users/${server.admin.userId}`, xToken, { systemAdmin: false })).status, 200);
        const [one, two] =
          round % 2 === 0
            ? await Promise.all([call('PATCH', `/api/users/${y.id}`, xToken, { systemAdmin: false }), call('PATCH', `/api/users/${x.id}`, yToken, { systemAdmin: false })])
            : await Promise.all([call('DELETE', `/api/users/${y.id}`, xToken), call('DELETE', `/api/users/${x.id}`, yToken)]);
        const admins = await db.selectFrom('users').select('id').where('system_admin', '=', 1).execute();
        assert.equal(admins.length, 1, `round ${round}: ${one.status} and ${two.status} left ${admins.length} system admins`);
        // The loser was refused as the last system admin (409), or was already no admin (403, 404) or no user (401).
        const statuses = [one.status, two.status].sort();
        assert.ok(statuses[0]! < 300 && [401, 403, 404, 409].includes(statuses[1]!), `round ${round}: ${one.status} and ${two.status}`);
        const survivor = admins[0]!.id === x.id ? xToken : yToken;
        assert.equal((await call('PATCH', `/api/users/${server.admin.userId}`, survivor, { systemAdmin: true })).status, 200);
        for (const user of [x, y]) await call('DELETE', `/api/users/${user.id}`, admin());
      }
      assert.deepEqual((await db.selectFrom('users').select('id').where('system_admin', '=', 1).execute()).map((u) => u.id), [server.admin.userId]);
    });

    it('an API key does not act on its user\'s account', async () => {
      const member = await call('POST', `/api/orgs/${server.admin.orgId}/members`, admin(), { email: 'keyholder@example.com', role: 'admin', password: 'keyholder-password-1' });
      const userId = member.body.user.id as string;
      const { accessToken } = await login(server.url, 'keyholder@example.com', 'keyholder-password-1');
      const key = (await call('POST', `/api/orgs/${server.admin.orgId}/api-keys`, accessToken, { name: 'mine' })).body.key as string;
      assert.equal((await call('GET', `/api/users/${userId}`, key)).status, 404);
      assert.equal((await call('PATCH', `/api/users/${userId}`, key, { password: 'stolen-password-1', currentPassword: 'keyholder-password-1' })).status, 404);
      await login(server.url, 'keyholder@example.com', 'keyholder-password-1');
    });
  });
}
