import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { backends } from '../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../helpers/server.ts';

const kid = 'test-key-1';
const audience = 'fleetd-api';

/** A stand-in for the issuer (Keycloak): a JWKS endpoint on a free port of 127.0.0.1. */
async function startJwksServer(publicJwk: JWK): Promise<{ url: string; close(): Promise<void> }> {
  const jwks = JSON.stringify({ keys: [{ ...publicJwk, kid, alg: 'RS256', use: 'sig' }] });
  const server = http.createServer((req, res) => {
    if (req.url !== '/certs') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

interface TokenOptions {
  sub: string;
  email?: string;
  roles?: unknown[];
  issuer?: string;
  audience?: string;
  /** Seconds from now; negative for a token that has expired. */
  expiresIn?: number;
  key?: CryptoKey;
  extra?: Record<string, unknown>;
}

for (const backend of await backends()) {
  describe(`oidc [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let jwks: Awaited<ReturnType<typeof startJwksServer>>;
    let issuer: string;
    let signingKey: CryptoKey;
    let strangerKey: CryptoKey;

    /** A token as the issuer would sign it, Keycloak style (`realm_access.roles`). */
    function token(options: TokenOptions): Promise<string> {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        email: options.email ?? `${options.sub}@example.com`,
        realm_access: { roles: options.roles ?? [] },
        ...options.extra,
      })
        .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
        .setSubject(options.sub)
        .setIssuer(options.issuer ?? issuer)
        .setAudience(options.audience ?? audience)
        .setIssuedAt(now - 10)
        .setExpirationTime(now + (options.expiresIn ?? 300))
        .sign(options.key ?? signingKey);
    }

    const me = async (sub: string, roles: unknown[], extra: Partial<TokenOptions> = {}) =>
      request(server.url, 'GET', '/api/auth/me', { token: await token({ sub, roles, ...extra }) });

    function assertRefused(reply: { status: number; body: any }, what: string): void {
      assert.equal(reply.status, 401, `${what}: ${JSON.stringify(reply.body)}`);
      assert.equal(reply.body.error.code, 'unauthenticated', what);
    }

    before(async () => {
      const pair = await generateKeyPair('RS256');
      signingKey = pair.privateKey;
      // Same algorithm and kid, different key: what a forger would sign with.
      strangerKey = (await generateKeyPair('RS256')).privateKey;
      jwks = await startJwksServer(await exportJWK(pair.publicKey));
      issuer = `${jwks.url}/realms/fleet`;
      server = await startTestServer(backend, {
        oidcIssuer: issuer,
        oidcJwksUrl: `${jwks.url}/certs`,
        oidcAudience: audience,
        oidcRolesClaim: 'realm_access.roles',
        oidcRoleMap: '{fleet-admins: admin, fleet-operators: operator, fleet-root: system_admin}',
        oidcOrganization: 'default',
      });
    });
    after(async () => {
      await server?.close();
      await jwks?.close();
    });

    it('a signed token with a mapped role authenticates; the user is created, external, with the mapped role in default', async () => {
      const reply = await me('kc-alice', ['offline_access', 'fleet-admins'], { extra: { name: 'Alice' } });
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assert.equal(reply.body.kind, 'user');
      assert.equal(reply.body.user.email, 'kc-alice@example.com');
      assert.equal(reply.body.user.name, 'Alice');
      assert.equal(reply.body.user.external, true);
      assert.equal(reply.body.systemAdmin, false);
      assert.equal(reply.body.apiKeyId, null);
      assert.deepEqual(reply.body.organizations.map((o: { slug: string; role: string }) => [o.slug, o.role]), [['default', 'admin']]);

      // Seen from fleetd's side: one user, a member of default as admin.
      const users = await request(server.url, 'GET', '/api/users?q=kc-alice', { token: server.admin.token });
      assert.equal(users.body.items.length, 1);
      assert.equal(users.body.items[0].external, true);
      assert.equal(users.body.items[0].id, reply.body.user.id);
      const members = await request(server.url, 'GET', '/api/orgs/default/members?q=kc-alice', { token: server.admin.token });
      assert.deepEqual(members.body.items.map((m: { user: { id: string }; role: string }) => [m.user.id, m.role]), [[reply.body.user.id, 'admin']]);

      // The mapped role is a real one: an admin may rename the organization.
      const renamed = await request(server.url, 'PATCH', '/api/orgs/default', { token: await token({ sub: 'kc-alice', roles: ['fleet-admins'] }), body: { name: 'Default' } });
      assert.equal(renamed.status, 200);

      // The next token of the same subject is the same user.
      const again = await me('kc-alice', ['fleet-admins']);
      assert.equal(again.body.user.id, reply.body.user.id);
    });

    it('the strongest mapped role wins, and fleetd role names map to themselves', async () => {
      const both = await me('kc-multi', ['fleet-operators', 'fleet-admins', 'unrelated']);
      assert.deepEqual(both.body.organizations.map((o: { role: string }) => o.role), ['admin']);
      const native = await me('kc-native', ['viewer']);
      assert.equal(native.status, 200);
      assert.deepEqual(native.body.organizations.map((o: { role: string }) => o.role), ['viewer']);
    });

    it('role names that are also names of object properties are just unmapped roles', async () => {
      const reply = await me('kc-proto', ['constructor', 'toString', '__proto__', 'fleet-operators']);
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      assert.deepEqual(reply.body.organizations.map((o: { role: string }) => o.role), ['operator']);
      assert.equal(reply.body.systemAdmin, false);
      const only = await me('kc-proto-only', ['constructor']);
      assert.equal(only.status, 200, JSON.stringify(only.body));
      assert.deepEqual(only.body.organizations, []);
    });

    it('the first requests of a new user, sent all at once, all succeed', async () => {
      const first = await token({ sub: 'kc-eager', roles: ['fleet-operators'] });
      const replies = await Promise.all(Array.from({ length: 8 }, () => request(server.url, 'GET', '/api/auth/me', { token: first })));
      assert.deepEqual(replies.map((r) => r.status), replies.map(() => 200), JSON.stringify(replies.find((r) => r.status !== 200)?.body));
      assert.equal(new Set(replies.map((r) => r.body.user.id)).size, 1);
      const members = await request(server.url, 'GET', '/api/orgs/default/members?q=kc-eager', { token: server.admin.token });
      assert.deepEqual(members.body.items.map((m: { role: string }) => m.role), ['operator']);
    });

    it('tokens with a bad signature, a wrong issuer, a wrong audience or that expired are refused with 401', async () => {
      assertRefused(await me('kc-mallory', ['fleet-admins'], { key: strangerKey }), 'bad signature');
      const good = await token({ sub: 'kc-mallory', roles: ['fleet-admins'] });
      const [header, payload] = good.split('.');
      const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), sub: 'kc-alice' })).toString('base64url');
      const tampered = `${header}.${forgedPayload}.${good.split('.')[2]}`;
      assertRefused(await request(server.url, 'GET', '/api/auth/me', { token: tampered }), 'tampered payload');
      assertRefused(await me('kc-mallory', ['fleet-admins'], { issuer: 'https://evil.example.com/realms/fleet' }), 'wrong issuer');
      assertRefused(await me('kc-mallory', ['fleet-admins'], { audience: 'another-api' }), 'wrong audience');
      assertRefused(await me('kc-mallory', ['fleet-admins'], { expiresIn: -60 }), 'expired');
      const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${good.split('.')[1]}.`;
      assertRefused(await request(server.url, 'GET', '/api/auth/me', { token: unsigned }), 'alg none');

      // None of them created a user.
      const users = await request(server.url, 'GET', '/api/users?q=kc-mallory', { token: server.admin.token });
      assert.deepEqual(users.body.items, []);
    });

    it('a token whose roles lose the mapping loses the membership; the user then gets 404 on default', async () => {
      const first = await me('kc-bob', ['fleet-operators']);
      assert.deepEqual(first.body.organizations.map((o: { role: string }) => o.role), ['operator']);
      const promoted = await me('kc-bob', ['fleet-admins']);
      assert.deepEqual(promoted.body.organizations.map((o: { role: string }) => o.role), ['admin']);

      const dropped = await me('kc-bob', ['offline_access']);
      assert.equal(dropped.status, 200);
      assert.deepEqual(dropped.body.organizations, []);
      const members = await request(server.url, 'GET', '/api/orgs/default/members?q=kc-bob', { token: server.admin.token });
      assert.deepEqual(members.body.items, []);

      const bobToken = await token({ sub: 'kc-bob', roles: ['offline_access'] });
      const org = await request(server.url, 'GET', '/api/orgs/default', { token: bobToken });
      assert.equal(org.status, 404);
      assert.equal(org.body.error.code, 'not_found');
      assert.equal((await request(server.url, 'GET', '/api/orgs/default/members', { token: bobToken })).status, 404);
      const orgs = await request(server.url, 'GET', '/api/orgs', { token: bobToken });
      assert.deepEqual(orgs.body.items, []);
    });

    it('an OIDC user that never had a role in default gets 404 on it', async () => {
      const reply = await me('kc-nobody', []);
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.body.organizations, []);
      const org = await request(server.url, 'GET', '/api/orgs/default', { token: await token({ sub: 'kc-nobody', roles: [] }) });
      assert.equal(org.status, 404);
    });

    it('the system_admin mapping grants system-admin routes, for as long as the token carries it', async () => {
      const root = await me('kc-root', ['fleet-root']);
      assert.equal(root.status, 200);
      assert.equal(root.body.systemAdmin, true);
      const users = await request(server.url, 'GET', '/api/users', { token: await token({ sub: 'kc-root', roles: ['fleet-root'] }) });
      assert.equal(users.status, 200);
      assert.ok(users.body.items.some((u: { email: string }) => u.email === server.admin.email));

      const admin = await request(server.url, 'GET', '/api/users', { token: await token({ sub: 'kc-alice', roles: ['fleet-admins'] }) });
      assert.equal(admin.status, 403);
      const demoted = await request(server.url, 'GET', '/api/users', { token: await token({ sub: 'kc-root', roles: [] }) });
      assert.equal(demoted.status, 403);
    });

    it('an external identity takes over an existing account only when the issuer marks the email verified', async () => {
      const local = await memberWithRole(server, server.admin.orgId, 'carol@example.com', 'viewer');
      assertRefused(await me('kc-carol', ['fleet-operators'], { email: 'carol@example.com' }), 'unverified email of an existing user');
      assertRefused(await me('kc-carol', ['fleet-operators'], { email: 'carol@example.com', extra: { email_verified: 'true' } }), 'email_verified not a boolean');
      const linked = await me('kc-carol', ['fleet-operators'], { email: 'carol@example.com', extra: { email_verified: true } });
      assert.equal(linked.status, 200, JSON.stringify(linked.body));
      assert.equal(linked.body.user.id, local.userId);
      assert.equal(linked.body.user.external, true);
      assert.deepEqual(linked.body.organizations.map((o: { role: string }) => o.role), ['operator']);
      // Another subject claiming the same, verified, email does not get the account.
      assertRefused(await me('kc-carol-2', ['fleet-admins'], { email: 'carol@example.com', extra: { email_verified: true } }), 'second subject');
    });
  });
}
