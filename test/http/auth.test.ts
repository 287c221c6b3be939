import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { backends } from '../helpers/backends.ts';
import { login, memberWithRole, request, startTestServer, type TestServer } from '../helpers/server.ts';

const memberPassword = 'member-password-1';

/**
 * One request sent from a chosen loopback address (127.0.0.0/8 is all loopback on Linux), so that
 * throttling, which counts per source address, can be seen from several clients.
 */
function requestFrom(
  localAddress: string,
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: any }> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  if (payload !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, base), { method, headers, localAddress, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** The Set-Cookie line that sets `name`. */
function setCookie(headers: Headers, name: string): string {
  const line = headers.getSetCookie().find((c) => c.startsWith(`${name}=`));
  assert.ok(line, `no Set-Cookie for ${name} in ${JSON.stringify(headers.getSetCookie())}`);
  return line;
}

const cookieValue = (line: string) => decodeURIComponent(line.slice(line.indexOf('=') + 1).split(';')[0]!);

function assertUnauthenticated(reply: { status: number; body: any }, message?: RegExp): void {
  assert.equal(reply.status, 401, JSON.stringify(reply.body));
  assert.equal(reply.body.error.code, 'unauthenticated');
  assert.equal(typeof reply.body.error.message, 'string');
  if (message) assert.match(reply.body.error.message, message);
}

for (const backend of await backends()) {
  describe(`auth [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    before(async () => {
      // Throttling has its own block below; here the many refused credentials must not add up to a block.
      server = await startTestServer(backend, { throttleMaxFailures: '1000' });
    });
    after(async () => {
      await server?.close();
    });

    it('login returns an access token, a refresh token and the user', async () => {
      const reply = await request(server.url, 'POST', '/api/auth/login', { body: { email: server.admin.email, password: server.admin.password } });
      assert.equal(reply.status, 200);
      const body = reply.body;
      assert.match(body.accessToken, /^[\w-]+\.[\w-]+\.[\w-]+$/);
      assert.equal(body.tokenType, 'Bearer');
      assert.equal(body.expiresIn, 900);
      assert.equal(typeof body.refreshToken, 'string');
      assert.ok(body.refreshToken.length >= 32);
      assert.equal(body.refreshExpiresIn, 2592000);
      assert.equal(body.csrfToken, undefined);
      assert.deepEqual(
        { id: body.user.id, email: body.user.email, systemAdmin: body.user.systemAdmin, external: body.user.external },
        { id: server.admin.userId, email: server.admin.email, systemAdmin: true, external: false },
      );
      assert.ok(!JSON.stringify(body).includes('argon2'), 'no password hash in the response');
      const me = await request(server.url, 'GET', '/api/auth/me', { token: body.accessToken });
      assert.equal(me.status, 200);
      assert.match(me.body.sessionId, /^ses_/);
    });

    it('the email of a login is case-insensitive', async () => {
      const reply = await request(server.url, 'POST', '/api/auth/login', { body: { email: '  ADMIN@Example.com ', password: server.admin.password } });
      assert.equal(reply.status, 200);
      assert.equal(reply.body.user.id, server.admin.userId);
    });

    it('a wrong password and an unknown email are both 401, with the same message', async () => {
      const wrong = await request(server.url, 'POST', '/api/auth/login', { body: { email: server.admin.email, password: 'not-the-password' } });
      assertUnauthenticated(wrong);
      const unknown = await request(server.url, 'POST', '/api/auth/login', { body: { email: 'nobody@example.com', password: server.admin.password } });
      assertUnauthenticated(unknown);
      // Nothing tells which emails have an account.
      assert.equal(unknown.body.error.message, wrong.body.error.message);
    });

    it('refresh rotates the refresh token: the old one is refused afterwards', async () => {
      await memberWithRole(server, server.admin.orgId, 'rotate@example.com', 'viewer');
      const first = await login(server.url, 'rotate@example.com', memberPassword);
      const refreshed = await request(server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: first.refreshToken } });
      assert.equal(refreshed.status, 200);
      assert.notEqual(refreshed.body.refreshToken, first.refreshToken);
      assert.equal(refreshed.body.user.id, first.user.id);
      assert.equal(refreshed.body.tokenType, 'Bearer');
      assert.ok(refreshed.body.refreshExpiresIn > 0 && refreshed.body.refreshExpiresIn <= 2592000);
      const me = await request(server.url, 'GET', '/api/auth/me', { token: refreshed.body.accessToken });
      assert.equal(me.status, 200);
      assert.equal(me.body.user.email, 'rotate@example.com');

      const again = await request(server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: first.refreshToken } });
      assertUnauthenticated(again);
    });

    it('presenting an already-rotated refresh token ends the whole session', async () => {
      await memberWithRole(server, server.admin.orgId, 'replay@example.com', 'viewer');
      const first = await login(server.url, 'replay@example.com', memberPassword);
      const second = await request(server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: first.refreshToken } });
      assert.equal(second.status, 200);
      const third = await request(server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: second.body.refreshToken } });
      assert.equal(third.status, 200);
      const newest = third.body.accessToken as string;
      assert.equal((await request(server.url, 'GET', '/api/auth/me', { token: newest })).status, 200);

      // Someone replays the token the client traded last: it leaked, so the session ends.
      const replayed = await request(server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: second.body.refreshToken } });
      assertUnauthenticated(replayed);
      assertUnauthenticated(await request(server.url, 'GET', '/api/auth/me', { token: newest }));
      assertUnauthenticated(await request(server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: third.body.refreshToken } }));
      // The user's other sessions are not touched.
      const other = await login(server.url, 'replay@example.com', memberPassword);
      assert.equal((await request(server.url, 'GET', '/api/auth/me', { token: other.accessToken })).status, 200);
    });

    it('an unknown refresh token is 401', async () => {
      assertUnauthenticated(await request(server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: 'no-such-refresh-token' } }));
    });

    it('logout revokes the session: its access and refresh tokens are refused afterwards', async () => {
      await memberWithRole(server, server.admin.orgId, 'logout@example.com', 'viewer');
      const tokens = await login(server.url, 'logout@example.com', memberPassword);
      const other = await login(server.url, 'logout@example.com', memberPassword);
      const out = await request(server.url, 'POST', '/api/auth/logout', { token: tokens.accessToken });
      assert.equal(out.status, 204);
      assertUnauthenticated(await request(server.url, 'GET', '/api/auth/me', { token: tokens.accessToken }));
      assertUnauthenticated(await request(server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: tokens.refreshToken } }));
      assertUnauthenticated(await request(server.url, 'POST', '/api/auth/logout', { token: tokens.accessToken }));
      // Only that session ends.
      assert.equal((await request(server.url, 'GET', '/api/auth/me', { token: other.accessToken })).status, 200);
    });

    it('logout with an API key is refused with 400; the key keeps working', async () => {
      const created = await request(server.url, 'POST', `/api/orgs/${server.admin.orgId}/api-keys`, { token: server.admin.token, body: { name: 'logout-key' } });
      assert.equal(created.status, 201);
      const out = await request(server.url, 'POST', '/api/auth/logout', { token: created.body.key });
      assert.equal(out.status, 400);
      assert.equal(out.body.error.code, 'bad_request');
      assert.equal((await request(server.url, 'GET', '/api/auth/me', { token: created.body.key })).status, 200);
    });

    it('requests without credentials, with garbage or with a non-Bearer scheme are 401', async () => {
      assertUnauthenticated(await request(server.url, 'GET', '/api/auth/me'));
      assertUnauthenticated(await request(server.url, 'GET', '/api/auth/me', { token: 'garbage' }));
      assertUnauthenticated(await request(server.url, 'GET', '/api/auth/me', { headers: { authorization: 'Basic YWRtaW46YWRtaW4=' } }));
      // A well-formed JWT that we did not sign.
      const [header, payload] = server.admin.token.split('.');
      assertUnauthenticated(await request(server.url, 'GET', '/api/auth/me', { token: `${header}.${payload}.c2lnbmF0dXJl` }));
      assertUnauthenticated(await request(server.url, 'GET', '/api/auth/me', { token: 'fk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' }));
    });

    it('GET /api/auth/me describes a user logged in with a token', async () => {
      const me = await request(server.url, 'GET', '/api/auth/me', { token: server.admin.token });
      assert.equal(me.status, 200);
      assert.equal(me.body.kind, 'user');
      assert.equal(me.body.user.id, server.admin.userId);
      assert.equal(me.body.user.email, server.admin.email);
      assert.equal(me.body.systemAdmin, true);
      assert.equal(me.body.apiKeyId, null);
      assert.equal(me.body.deviceId, null);
      assert.match(me.body.sessionId, /^ses_/);
      const own = me.body.organizations.find((o: { id: string }) => o.id === server.admin.orgId);
      assert.deepEqual([own?.slug, own?.role], ['default', 'owner']);
    });

    it('GET /api/auth/me describes an API key: its user, its own role, no system admin rights', async () => {
      const created = await request(server.url, 'POST', `/api/orgs/${server.admin.orgId}/api-keys`, { token: server.admin.token, body: { name: 'me-key', role: 'operator' } });
      assert.equal(created.status, 201);
      const me = await request(server.url, 'GET', '/api/auth/me', { token: created.body.key });
      assert.equal(me.status, 200);
      assert.equal(me.body.kind, 'api_key');
      assert.equal(me.body.apiKeyId, created.body.id);
      assert.equal(me.body.user.id, server.admin.userId);
      // The key's user is a system admin; the key is not.
      assert.equal(me.body.systemAdmin, false);
      assert.equal(me.body.sessionId, null);
      assert.equal(me.body.deviceId, null);
      assert.deepEqual(me.body.organizations.map((o: { slug: string; role: string }) => [o.slug, o.role]), [['default', 'operator']]);
    });

    describe('browser sessions', () => {
      let session: string;
      let csrf: string;
      let orgId: string;
      const cookie = () => `fleetd_session=${encodeURIComponent(session)}`;

      before(async () => {
        const org = await request(server.url, 'POST', '/api/orgs', { token: server.admin.token, body: { slug: 'cookie-org', name: 'Cookie Org' } });
        assert.equal(org.status, 201);
        orgId = org.body.id;
      });

      it('login with "session": "cookie" sets an HttpOnly session cookie and a CSRF cookie, and returns no refresh token', async () => {
        const reply = await request(server.url, 'POST', '/api/auth/login', { body: { email: server.admin.email, password: server.admin.password, session: 'cookie' } });
        assert.equal(reply.status, 200);
        assert.ok(!('refreshToken' in reply.body), 'no refreshToken in the body of a browser login');
        assert.equal(typeof reply.body.csrfToken, 'string');
        assert.equal(typeof reply.body.accessToken, 'string');

        const sessionLine = setCookie(reply.headers, 'fleetd_session');
        assert.match(sessionLine, /;\s*HttpOnly/i);
        assert.match(sessionLine, /;\s*SameSite=Strict/i);
        assert.match(sessionLine, /;\s*Path=\//i);
        assert.match(sessionLine, /;\s*Max-Age=\d+/i);
        session = cookieValue(sessionLine);
        assert.ok(session.length >= 32);

        const csrfLine = setCookie(reply.headers, 'fleetd_csrf');
        // The console's script reads this one to echo it in X-CSRF-Token.
        assert.doesNotMatch(csrfLine, /HttpOnly/i);
        csrf = cookieValue(csrfLine);
        assert.equal(csrf, reply.body.csrfToken);
      });

      it('a GET with only the cookie is authenticated', async () => {
        const me = await request(server.url, 'GET', '/api/auth/me', { headers: { cookie: cookie() } });
        assert.equal(me.status, 200);
        assert.equal(me.body.kind, 'user');
        assert.equal(me.body.user.id, server.admin.userId);
        assert.match(me.body.sessionId, /^ses_/);
        assert.equal(me.body.apiKeyId, null);
        const org = await request(server.url, 'GET', `/api/orgs/${orgId}`, { headers: { cookie: cookie() } });
        assert.equal(org.status, 200);
        assert.equal(org.body.name, 'Cookie Org');
      });

      it('a PATCH or POST with the cookie but without the right X-CSRF-Token is 403 and changes nothing', async () => {
        const without = await request(server.url, 'PATCH', `/api/orgs/${orgId}`, { headers: { cookie: cookie() }, body: { name: 'Forged' } });
        assert.equal(without.status, 403);
        assert.equal(without.body.error.code, 'forbidden');
        const wrong = await request(server.url, 'PATCH', `/api/orgs/${orgId}`, { headers: { cookie: cookie(), 'x-csrf-token': `${csrf}x` }, body: { name: 'Forged' } });
        assert.equal(wrong.status, 403);
        const empty = await request(server.url, 'PATCH', `/api/orgs/${orgId}`, { headers: { cookie: cookie(), 'x-csrf-token': '' }, body: { name: 'Forged' } });
        assert.equal(empty.status, 403);
        const org = await request(server.url, 'GET', `/api/orgs/${orgId}`, { token: server.admin.token });
        assert.equal(org.body.name, 'Cookie Org');

        const post = await request(server.url, 'POST', '/api/orgs', { headers: { cookie: cookie() }, body: { slug: 'forged-org', name: 'Forged' } });
        assert.equal(post.status, 403);
        const list = await request(server.url, 'GET', '/api/orgs?q=forged', { token: server.admin.token });
        assert.deepEqual(list.body.items, []);
        // Logging out is a change too.
        const out = await request(server.url, 'POST', '/api/auth/logout', { headers: { cookie: cookie() } });
        assert.equal(out.status, 403);
        assert.equal((await request(server.url, 'GET', '/api/auth/me', { headers: { cookie: cookie() } })).status, 200);
      });

      it('with the right X-CSRF-Token the cookie session may change things', async () => {
        const patched = await request(server.url, 'PATCH', `/api/orgs/${orgId}`, { headers: { cookie: cookie(), 'x-csrf-token': csrf }, body: { name: 'Renamed' } });
        assert.equal(patched.status, 200);
        assert.equal(patched.body.name, 'Renamed');
        const posted = await request(server.url, 'POST', '/api/orgs', { headers: { cookie: cookie(), 'x-csrf-token': csrf }, body: { slug: 'cookie-made', name: 'Cookie Made' } });
        assert.equal(posted.status, 201);
      });

      it('the CSRF token of one browser session does not serve another', async () => {
        const other = await request(server.url, 'POST', '/api/auth/login', { body: { email: server.admin.email, password: server.admin.password, session: 'cookie' } });
        const otherCookie = `fleetd_session=${encodeURIComponent(cookieValue(setCookie(other.headers, 'fleetd_session')))}`;
        const crossed = await request(server.url, 'PATCH', `/api/orgs/${orgId}`, { headers: { cookie: otherCookie, 'x-csrf-token': csrf }, body: { name: 'Crossed' } });
        assert.equal(crossed.status, 403);
      });

      it('a refresh token is not a session cookie, and a session cookie is not a bearer token', async () => {
        const tokens = await login(server.url, server.admin.email, server.admin.password);
        assertUnauthenticated(await request(server.url, 'GET', '/api/auth/me', { headers: { cookie: `fleetd_session=${encodeURIComponent(tokens.refreshToken)}` } }));
        assertUnauthenticated(await request(server.url, 'GET', '/api/auth/me', { token: session }));
        assert.equal((await request(server.url, 'GET', '/api/auth/me', { headers: { cookie: cookie() } })).status, 200);
      });

      it('logout with the cookie and the CSRF token ends the browser session and clears its cookies', async () => {
        const out = await request(server.url, 'POST', '/api/auth/logout', { headers: { cookie: cookie(), 'x-csrf-token': csrf } });
        assert.equal(out.status, 204);
        assert.match(setCookie(out.headers, 'fleetd_session'), /^fleetd_session=;/);
        assert.match(setCookie(out.headers, 'fleetd_csrf'), /^fleetd_csrf=;/);
        const me = await request(server.url, 'GET', '/api/auth/me', { headers: { cookie: cookie() } });
        assertUnauthenticated(me);
      });
    });
  });

  describe(`auth: access token expiry [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(backend, { accessTokenTtl: '1' });
    });
    after(async () => {
      await server?.close();
    });

    it('an expired access token is refused with 401 saying it expired; the refresh token still works', async () => {
      const tokens = await login(server.url, server.admin.email, server.admin.password);
      await sleep(2100);
      const me = await request(server.url, 'GET', '/api/auth/me', { token: tokens.accessToken });
      assertUnauthenticated(me, /expired/i);
      const refreshed = await request(server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: tokens.refreshToken } });
      assert.equal(refreshed.status, 200);
      assert.equal(refreshed.body.expiresIn, 1);
    });
  });

  describe(`auth: throttling per source address [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(backend, { throttleMaxFailures: '3' });
    });
    after(async () => {
      await server?.close();
    });

    const assertBlocked = (reply: { status: number; headers: http.IncomingHttpHeaders; body: any }) => {
      assert.equal(reply.status, 429, JSON.stringify(reply.body));
      assert.equal(reply.body.error.code, 'rate_limited');
      const retryAfter = Number(reply.headers['retry-after']);
      assert.ok(Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 900, `Retry-After: ${reply.headers['retry-after']}`);
    };

    it('after 3 wrong passwords from an address, even the right password is refused with 429 and Retry-After', async () => {
      const address = '127.0.0.2';
      const wrong = { email: server.admin.email, password: 'wrong-password' };
      assert.equal((await requestFrom(address, server.url, 'POST', '/api/auth/login', { body: wrong })).status, 401);
      assert.equal((await requestFrom(address, server.url, 'POST', '/api/auth/login', { body: { ...wrong, email: 'unknown@example.com' } })).status, 401);
      // The failure that reaches the limit may already report the block.
      const third = await requestFrom(address, server.url, 'POST', '/api/auth/login', { body: wrong });
      assert.ok(third.status === 401 || third.status === 429, `third attempt: ${third.status}`);
      const fourth = await requestFrom(address, server.url, 'POST', '/api/auth/login', { body: { email: server.admin.email, password: server.admin.password } });
      assertBlocked(fourth);

      // Another address is not blocked, and credentials already held still work from the blocked one.
      const elsewhere = await requestFrom('127.0.0.3', server.url, 'POST', '/api/auth/login', { body: { email: server.admin.email, password: server.admin.password } });
      assert.equal(elsewhere.status, 200);
      assert.equal((await requestFrom(address, server.url, 'GET', '/api/auth/me', { token: server.admin.token })).status, 200);
    });

    it('repeated invalid API keys and garbage bearer tokens are refused with 429 once blocked; valid credentials still pass', async () => {
      const address = '127.0.0.4';
      const key = await request(server.url, 'POST', `/api/orgs/${server.admin.orgId}/api-keys`, { token: server.admin.token, body: { name: 'throttle-key' } });
      assert.equal(key.status, 201);
      const unknownKey = `fk_${'a'.repeat(12)}_${'b'.repeat(40)}`;
      // A key whose prefix exists but whose secret is wrong.
      const wrongSecret = `${key.body.key.slice(0, 16)}${'c'.repeat(40)}`;
      for (const token of [unknownKey, 'garbage-token', wrongSecret]) {
        assert.equal((await requestFrom(address, server.url, 'GET', '/api/auth/me', { token })).status, 401, token);
      }
      for (const token of [unknownKey, 'garbage-token', wrongSecret, 'a.b.c']) {
        assertBlocked(await requestFrom(address, server.url, 'GET', '/api/auth/me', { token }));
      }
      const withKey = await requestFrom(address, server.url, 'GET', '/api/auth/me', { token: key.body.key });
      assert.equal(withKey.status, 200);
      assert.equal(withKey.body.kind, 'api_key');
      assert.equal((await requestFrom(address, server.url, 'GET', '/api/auth/me', { token: server.admin.token })).status, 200);
      // Another address is not blocked.
      assert.equal((await requestFrom('127.0.0.5', server.url, 'GET', '/api/auth/me', { token: unknownKey })).status, 401);
    });

    it('wrong refresh tokens count against the address too', async () => {
      const address = '127.0.0.6';
      for (let i = 0; i < 3; i++) {
        assert.equal((await requestFrom(address, server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: `stolen-guess-${i}` } })).status, 401);
      }
      assertBlocked(await requestFrom(address, server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: 'stolen-guess-3' } }));
      assertBlocked(await requestFrom(address, server.url, 'GET', '/api/auth/me', { token: 'garbage-token' }));
      // A valid refresh token still works from there.
      const tokens = await login(server.url, server.admin.email, server.admin.password);
      const refreshed = await requestFrom(address, server.url, 'POST', '/api/auth/refresh', { body: { refreshToken: tokens.refreshToken } });
      assert.equal(refreshed.status, 200);
    });
  });

  describe(`auth: throttling window [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(backend, { throttleMaxFailures: '2', throttleWindow: '1' });
    });
    after(async () => {
      await server?.close();
    });

    it('a block lasts the window; afterwards failures count from zero again', async () => {
      const address = '127.0.0.10';
      const token = 'garbage-token';
      assert.equal((await requestFrom(address, server.url, 'GET', '/api/auth/me', { token })).status, 401);
      assert.equal((await requestFrom(address, server.url, 'GET', '/api/auth/me', { token })).status, 401);
      const blocked = await requestFrom(address, server.url, 'GET', '/api/auth/me', { token });
      assert.equal(blocked.status, 429);
      assert.equal(blocked.headers['retry-after'], '1');
      await sleep(1100);
      assert.equal((await requestFrom(address, server.url, 'GET', '/api/auth/me', { token })).status, 401);
      assert.equal((await requestFrom(address, server.url, 'GET', '/api/auth/me', { token })).status, 401);
      assert.equal((await requestFrom(address, server.url, 'GET', '/api/auth/me', { token })).status, 429);
    });
  });

  describe(`auth: throttling of parallel attempts [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(backend, { throttleMaxFailures: '10' });
    });
    after(async () => {
      await server?.close();
    });

    // Every node of a cluster, and every request in flight, must add to the same count.
    it('wrong passwords sent all at once are all counted', async () => {
      const address = '127.0.0.8';
      const body = { email: server.admin.email, password: 'wrong-password' };
      const burst = await Promise.all(Array.from({ length: 15 }, () => requestFrom(address, server.url, 'POST', '/api/auth/login', { body })));
      assert.ok(burst.every((r) => r.status === 401 || r.status === 429));
      const next = await requestFrom(address, server.url, 'POST', '/api/auth/login', { body: { email: server.admin.email, password: server.admin.password } });
      assert.equal(next.status, 429);
    });

    it('invalid API keys sent all at once are all counted', async () => {
      const address = '127.0.0.9';
      const token = `fk_${'a'.repeat(12)}_${'b'.repeat(40)}`;
      const burst = await Promise.all(Array.from({ length: 25 }, () => requestFrom(address, server.url, 'GET', '/api/auth/me', { token })));
      assert.ok(burst.every((r) => r.status === 401 || r.status === 429));
      const next = await requestFrom(address, server.url, 'GET', '/api/auth/me', { token });
      assert.equal(next.status, 429);
    });
  });
}
