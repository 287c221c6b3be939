import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { verifyPassword } from '../../src/core/secrets.ts';
import { insertUser } from '../../src/services/users.ts';
import { migrations } from '../../src/store/migrations/index.ts';
import { openStore } from '../../src/store/store.ts';
import { backends, type TestDatabase } from '../helpers/backends.ts';
import { freePort, spawnFleetd, waitFor, type Spawned } from '../helpers/process.ts';
import { describeRun, fleetd, tempDir } from './program-run.ts';

const migrationNames = Object.keys(migrations);

describe('fleetd config', () => {
  let cwd: string;
  const secret = 'a-signing-secret-of-forty-characters-000';
  const longAudience = `fleet ${'api '.repeat(30)}end`;
  let env: NodeJS.ProcessEnv;
  before(() => {
    cwd = tempDir();
    writeFileSync(join(cwd, 'fleetd.yaml'), 'logLevel: debug\nport: 1234\n');
    env = { FLEETD_PORT: '8123', FLEETD_JWT_SECRET: secret, FLEETD_OIDC_ROLE_MAP: '{ops: operator}', FLEETD_OIDC_AUDIENCE: longAudience };
  });
  const flags = ['--host', '127.0.0.1', '--database', 'postgres://fleet:pw-secret-1@db.example:5432/fleet'];

  it('prints the effective configuration as YAML, each value set somewhere annotated with where, secrets masked', async () => {
    const run = await fleetd(['config', ...flags], { cwd, env });
    assert.equal(run.code, 0, describeRun(run));
    const lines = run.stdout.split('\n');
    const file = join(cwd, 'fleetd.yaml');
    assert.ok(lines.includes('port: 8123  # FLEETD_PORT'), run.stdout);
    assert.ok(lines.includes('host: 127.0.0.1  # --host'), run.stdout);
    assert.ok(lines.includes(`logLevel: debug  # ${file}`), run.stdout);
    assert.ok(lines.includes('jwtSecret: "***"  # FLEETD_JWT_SECRET'), run.stdout);
    assert.ok(lines.includes('database: postgres://fleet:***@db.example:5432/fleet  # --database'), run.stdout);
    assert.ok(lines.includes('bodyLimit: 1048576'), 'a default value carries no comment');
    assert.ok(!run.stdout.includes('pw-secret-1') && !run.stdout.includes(secret), 'secrets are masked');
    const printed = parseYaml(run.stdout) as Record<string, unknown>;
    assert.equal(printed.port, 8123);
    assert.deepEqual(printed.oidcRoleMap, { ops: 'operator' });
    assert.equal(printed.oidcAudience, longAudience, 'a long value stays one value, its comment outside it');
    assert.equal(printed.data, join(cwd, 'fleetd-data'));
    assert.equal(printed.shutdownTimeout, 10);
  });

  it('--json prints the configuration and the origins as JSON', async () => {
    const run = await fleetd(['config', '--json', ...flags], { cwd, env });
    assert.equal(run.code, 0, describeRun(run));
    const printed = JSON.parse(run.stdout) as { config: Record<string, unknown>; origin: Record<string, string> };
    assert.equal(printed.config.port, 8123);
    assert.equal(printed.config.jwtSecret, '***');
    assert.equal(printed.config.database, 'postgres://fleet:***@db.example:5432/fleet');
    assert.equal(printed.config.logLevel, 'debug');
    assert.deepEqual(
      { port: printed.origin.port, host: printed.origin.host, logLevel: printed.origin.logLevel, trustProxy: printed.origin.trustProxy },
      { port: 'FLEETD_PORT', host: '--host', logLevel: join(cwd, 'fleetd.yaml'), trustProxy: 'default' },
    );
    assert.ok(!run.stdout.includes('pw-secret-1') && !run.stdout.includes(secret));
  });

  it('a bad value exits 2 naming the key, the value, where it came from and what is allowed', async () => {
    const run = await fleetd(['config'], { cwd, env: { FLEETD_PORT: 'abc' } });
    assert.equal(run.code, 2, describeRun(run));
    assert.ok(run.stderr.includes('port = "abc" (from FLEETD_PORT) is not allowed: a whole number from 0 to 65535'), run.stderr);
    assert.equal(run.stdout, '');
  });
});

describe('fleetd migrate', () => {
  let cwd: string;
  before(() => {
    cwd = tempDir();
  });

  it('applies every migration to an empty SQLite file, then says up to date', async () => {
    const file = join(cwd, 'empty.db');
    writeFileSync(file, '');
    const first = await fleetd(['migrate', '--database', `sqlite:${file}`], { cwd });
    assert.equal(first.code, 0, describeRun(first));
    assert.equal(first.stdout, `applied: ${migrationNames.join(', ')}\n`);
    assert.ok(first.stdout.includes('0001_identity'));
    const second = await fleetd(['migrate', '--database', `sqlite:${file}`], { cwd });
    assert.equal(second.code, 0, describeRun(second));
    assert.equal(second.stdout, 'up to date\n');
  });

  it('--status lists the pending migrations of a fresh database and applies none', async () => {
    const status = await fleetd(['migrate', '--status', '--data', 'fresh'], { cwd });
    assert.equal(status.code, 0, describeRun(status));
    assert.equal(status.stdout, `pending: ${migrationNames.join(', ')}\n`);
    const store = openStore(`sqlite:${join(cwd, 'fresh', 'fleetd.db')}`);
    try {
      assert.deepEqual(await store.pendingMigrations(), migrationNames);
    } finally {
      await store.close();
    }
  });
});

describe('fleetd admin create', () => {
  let cwd: string;
  let url: string;
  before(() => {
    cwd = tempDir();
    url = `sqlite:${join(cwd, 'fleetd-data', 'fleetd.db')}`;
  });

  /** Reads the database the commands wrote, as the server would. */
  async function inspect<T>(read: (store: ReturnType<typeof openStore>) => Promise<T>): Promise<T> {
    const store = openStore(url);
    try {
      return await read(store);
    } finally {
      await store.close();
    }
  }
  const userByEmail = (email: string) => inspect((s) => s.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst());
  const rolesOf = (userId: string) =>
    inspect((s) =>
      s.db
        .selectFrom('memberships')
        .innerJoin('organizations', 'organizations.id', 'memberships.org_id')
        .select(['organizations.slug', 'memberships.role'])
        .where('memberships.user_id', '=', userId)
        .orderBy('organizations.slug')
        .execute(),
    );

  it('creates a system admin who owns organization default, with the password read from standard input', async () => {
    const run = await fleetd(['admin', 'create', 'ada@example.com', '--password-stdin'], { cwd, input: 'correct-horse-1\n' });
    assert.equal(run.code, 0, describeRun(run));
    assert.match(run.stdout, /^Created system admin ada@example\.com \(usr_\S+\), owner of organization default \(org_\S+\)\./);
    const user = await userByEmail('ada@example.com');
    assert.equal(user?.system_admin, 1);
    assert.equal(await verifyPassword(user.password_hash!, 'correct-horse-1'), true, 'the password is stored without the newline');
    assert.deepEqual(await rolesOf(user.id), [{ slug: 'default', role: 'owner' }]);
  });

  it('takes the password from FLEETD_ADMIN_PASSWORD, refuses a short one, and does not prompt without a terminal', async () => {
    const [fromEnv, short, noPassword] = await Promise.all([
      fleetd(['admin', 'create', 'bob@example.com', '--org', 'ops', '--name', 'Bob'], { cwd, env: { FLEETD_ADMIN_PASSWORD: 'bob-password-1' } }),
      fleetd(['admin', 'create', 'carol@example.com', '--password-stdin'], { cwd, input: 'short\n' }),
      fleetd(['admin', 'create', 'dan@example.com'], { cwd }),
    ]);
    assert.equal(fromEnv.code, 0, describeRun(fromEnv));
    assert.match(fromEnv.stdout, /^Created system admin bob@example\.com .* owner of organization ops /);
    const bob = await userByEmail('bob@example.com');
    assert.equal(bob?.name, 'Bob');
    assert.equal(await verifyPassword(bob.password_hash!, 'bob-password-1'), true);
    assert.deepEqual(await rolesOf(bob.id), [{ slug: 'ops', role: 'owner' }]);

    assert.equal(short.code, 2, describeRun(short));
    assert.match(short.stderr, /at least 8 characters/);
    assert.equal(await userByEmail('carol@example.com'), undefined);

    assert.equal(noPassword.code, 2, describeRun(noPassword));
    assert.match(noPassword.stderr, /No terminal to ask for a password/);
    assert.equal(await userByEmail('dan@example.com'), undefined);
  });

  it('run again on an existing user, promotes instead of failing, without asking a password', async () => {
    const plain = await inspect((s) => insertUser(s.db, { email: 'erin@example.com', password: 'erin-password-1' }));
    const [again, promoted] = await Promise.all([
      fleetd(['admin', 'create', 'ADA@example.com', '--org', 'ops'], { cwd }),
      fleetd(['admin', 'create', 'erin@example.com'], { cwd }),
    ]);
    assert.equal(again.code, 0, describeRun(again));
    assert.match(again.stdout, /^Made existing user system admin ADA@example\.com .* owner of organization ops /);
    const ada = await userByEmail('ada@example.com');
    assert.equal(await verifyPassword(ada!.password_hash!, 'correct-horse-1'), true, 'the password is kept');
    assert.deepEqual(await rolesOf(ada!.id), [{ slug: 'default', role: 'owner' }, { slug: 'ops', role: 'owner' }]);

    assert.equal(promoted.code, 0, describeRun(promoted));
    const erin = await userByEmail('erin@example.com');
    assert.equal(erin?.system_admin, 1);
    assert.equal(await verifyPassword(erin.password_hash!, 'erin-password-1'), true);
    assert.deepEqual(await rolesOf(plain.id), [{ slug: 'default', role: 'owner' }]);
  });
});

/** Sends `body` to the server in two parts, the second only when `between` has run: a request in flight. */
function slowRequest(port: number, path: string, body: string, between: () => Promise<void>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path,
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      res.on('error', reject);
    });
    const half = Math.floor(body.length / 2);
    req.flushHeaders();
    req.write(body.slice(0, half));
    between().then(() => req.end(body.slice(half)), reject);
  });
}

for (const backend of await backends()) {
  describe(`fleetd serve [${backend.name}]`, { skip: backend.skip }, () => {
    const shutdownTimeout = 10;
    const email = 'root@example.com';
    const password = 'root-password-1';
    let database: TestDatabase;
    let cwd: string;
    let port: number;
    let base: string;
    let serve: Spawned;

    before(async () => {
      database = await backend.create();
      cwd = tempDir();
      mkdirSync(join(cwd, 'data'));
      port = await freePort();
      base = `http://127.0.0.1:${port}`;
      serve = spawnFleetd(['serve', '--host', '127.0.0.1', '--port', String(port), '--shutdown-timeout', String(shutdownTimeout), '--rrduino-port', '0', '--data', join(cwd, 'data'), '--database', database.url], {
        cwd,
      });
      const early = serve.exited.then((exit) => assert.fail(`fleetd serve exited early (${JSON.stringify(exit)})\n${serve.stderr()}\n${serve.stdout()}`));
      early.catch(() => {}); // it exits at the end too, after SIGTERM
      await Promise.race([waitFor(() => serve.stderr().includes('fleetd is serving on'), () => serve.stderr()), early]);
    });
    after(async () => {
      if (serve?.child.exitCode === null && serve.child.signalCode === null) {
        serve.child.kill('SIGKILL');
        await serve.exited;
      }
      await database?.drop();
    });

    it('says where it serves, and how to create the first admin in its database', () => {
      assert.ok(serve.stderr().includes(`fleetd is serving on ${base} (API docs: ${base}/api/docs)`), serve.stderr());
      // A PostgreSQL URL may hold a password: the hint leaves it out.
      const target = backend.name === 'sqlite' ? `--database ${database.url}` : '--database <url>';
      assert.ok(serve.stderr().includes(`No admin yet. Create the first one with:\n  npx fleetd admin create you@example.com --org default ${target}\n`), serve.stderr());
      assert.match(serve.stdout(), /"msg":"database migrated"/);
    });

    it('answers /healthz and /readyz over HTTP', async () => {
      const health = await fetch(`${base}/healthz`);
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { status: 'ok' });
      const ready = await fetch(`${base}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { status: 'ready' });
    });

    it('lets an admin made as its hint says, with `fleetd admin create` beside it, log in and ask who they are', async () => {
      const hint = /npx fleetd (admin create .*)\n/.exec(serve.stderr())?.[1];
      assert.ok(hint, serve.stderr());
      const args = hint.split(' ').map((arg) => (arg === 'you@example.com' ? email : arg === '<url>' ? database.url : arg));
      const created = await fleetd(args, { cwd, env: { FLEETD_ADMIN_PASSWORD: password } });
      assert.equal(created.code, 0, describeRun(created));
      const login = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
      assert.equal(login.status, 200);
      const { accessToken } = (await login.json()) as { accessToken: string };
      const me = await fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${accessToken}` } });
      assert.equal(me.status, 200);
      const body = (await me.json()) as { kind: string; systemAdmin: boolean; user: { email: string }; organizations: Array<{ slug: string; role: string }> };
      assert.equal(body.kind, 'user');
      assert.equal(body.systemAdmin, true);
      assert.equal(body.user.email, email);
      assert.deepEqual(body.organizations.map((o) => [o.slug, o.role]), [['default', 'owner']]);
    });

    it('on SIGTERM finishes the request in flight, then exits 0 within the shutdown timeout', async () => {
      let signalledAt = 0;
      const incoming = () => serve.stdout().split('"msg":"incoming request"').length;
      const before = incoming();
      const reply = await slowRequest(port, '/api/auth/login', JSON.stringify({ email, password }), async () => {
        // The server has the headers and waits for the rest of the body.
        await waitFor(() => incoming() > before, () => serve.stdout());
        signalledAt = Date.now();
        serve.child.kill('SIGTERM');
        await waitFor(() => serve.stdout().includes('"msg":"shutting down"'), () => serve.stdout());
        await sleep(200);
      });
      assert.equal(reply.status, 200, reply.body);
      assert.ok((JSON.parse(reply.body) as { accessToken?: string }).accessToken);
      const exit = await Promise.race([serve.exited, sleep(shutdownTimeout * 1000 + 5000).then(() => 'still running')]);
      assert.deepEqual(exit, { code: 0, signal: null }, serve.stderr());
      assert.ok(Date.now() - signalledAt < shutdownTimeout * 1000, `took ${Date.now() - signalledAt} ms`);
      assert.match(serve.stdout(), /"msg":"fleetd stopped"/);
      assert.doesNotMatch(serve.stdout(), /shutdown timeout/, 'every connection closed by itself');
    });
  });
}
