import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { errorCodes } from '../../src/core/errors.ts';
import { backends } from '../helpers/backends.ts';
import { request, startTestServer, type Reply, type TestServer } from '../helpers/server.ts';

/**
 * Hostile and malformed input: every refusal is a 4xx with the one error body, and a refused write
 * stores nothing at all.
 */

const bodyLimit = 2048;
const tables = ['organizations', 'memberships', 'api_keys', 'users', 'audit_events'] as const;

/** Asserts `{"error": {"code", "message", "details"?}}` and nothing else, with the status the code stands for. */
function assertError(reply: Reply, status: number, code?: string): { code: string; message: string; details?: Array<{ field: string; message: string; in?: string }> } {
  assert.equal(reply.status, status, `status ${reply.status}, body ${JSON.stringify(reply.body)}`);
  assert.match(reply.headers.get('content-type') ?? '', /^application\/json/);
  assert.ok(reply.body && typeof reply.body === 'object', `error body is JSON: ${String(reply.body)}`);
  assert.deepEqual(Object.keys(reply.body), ['error']);
  const error = reply.body.error;
  const keys = Object.keys(error).sort();
  assert.ok(keys.join() === 'code,message' || keys.join() === 'code,details,message', `error keys: ${keys.join()}`);
  assert.equal(typeof error.code, 'string');
  assert.equal(typeof error.message, 'string');
  assert.ok(error.message.length > 0);
  assert.ok(error.code in errorCodes, `unknown code ${error.code}`);
  if (code !== undefined) assert.equal(error.code, code);
  // Refusals by Node's HTTP parser keep their own status (431, 408) under the code bad_request.
  if (status < 405 || status === 413 || status === 415) assert.equal(errorCodes[error.code as keyof typeof errorCodes].status, status);
  return error;
}

/** A validation failure whose details name `field` (in `where`: body, querystring, params). */
function assertInvalid(reply: Reply, field: string, where: string) {
  const error = assertError(reply, 400, 'validation_failed');
  assert.ok(Array.isArray(error.details), 'validation_failed has details');
  for (const detail of error.details!) {
    assert.equal(typeof detail.field, 'string');
    assert.equal(typeof detail.message, 'string');
  }
  assert.ok(
    error.details!.some((d) => d.field === field && d.in === where),
    `details name ${field} in ${where}: ${JSON.stringify(error.details)}`,
  );
  assert.match(error.message, new RegExp(where));
}

/** One request written by hand on a fresh socket; what came back before the server closed it. */
function rawRequest(url: string, text: string): Promise<{ status: number; body: unknown; head: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    // The server may reset the connection right after answering; what it answered still counts.
    socket.on('error', (error) => (received ? undefined : reject(error)));
    socket.on('close', () => {
      const [head = '', body = ''] = received.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
      resolve({ status, head, body: body ? JSON.parse(body) : undefined });
    });
    socket.write(text);
  });
}

for (const backend of await backends()) {
  describe(`bad input [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let token: string;
    let orgId: string;
    const orgs = () => '/api/orgs';
    const members = () => `/api/orgs/${orgId}/members`;

    async function counts(): Promise<Record<string, number>> {
      const db = server.services.store.db;
      const result: Record<string, number> = {};
      for (const table of tables) {
        const row = await db.selectFrom(table).select((eb) => eb.fn.countAll<string | number>().as('n')).executeTakeFirstOrThrow();
        result[table] = Number(row.n);
      }
      return result;
    }

    /** Runs `refusals` and checks that the store holds exactly the rows it held before. */
    async function storesNothing(refusals: () => Promise<void>) {
      const before = await counts();
      await refusals();
      assert.deepEqual(await counts(), before, 'a refused request stored something');
    }

    const send = (method: string, path: string, options: { body?: unknown; headers?: Record<string, string>; token?: string | null } = {}) =>
      request(server.url, method, path, { body: options.body, headers: options.headers, token: options.token === null ? undefined : (options.token ?? token) });

    before(async () => {
      server = await startTestServer(backend, { bodyLimit: String(bodyLimit) });
      token = server.admin.token;
      orgId = server.admin.orgId;
    });
    after(async () => {
      await server?.close();
    });

    it('malformed JSON is 400 bad_request', async () => {
      await storesNothing(async () => {
        for (const [method, path] of [
          ['POST', orgs()],
          ['POST', members()],
          ['PATCH', `/api/orgs/${orgId}`],
          ['POST', '/api/users'],
          ['POST', `/api/orgs/${orgId}/api-keys`],
        ] as const) {
          for (const body of ['{"slug":', '{slug: "x"}', "{'a': 1}", '{"a":1}}', 'nul', '\u0000']) {
            const error = assertError(await send(method, path, { body }), 400, 'bad_request');
            assert.match(error.message, /JSON/);
          }
        }
      });
    });

    it('a body that poisons prototypes is refused', async () => {
      await storesNothing(async () => {
        assertError(await send('POST', orgs(), { body: '{"slug":"proto","name":"Proto","__proto__":{"admin":true}}' }), 400, 'bad_request');
        assertError(await send('POST', orgs(), { body: '{"slug":"ctor","name":"Ctor","constructor":{"prototype":{"admin":true}}}' }), 400, 'bad_request');
      });
      assert.equal(({} as Record<string, unknown>).admin, undefined);
    });

    it('wrong types are 400 validation_failed naming the field', async () => {
      await storesNothing(async () => {
        assertInvalid(await send('POST', orgs(), { body: { slug: 'typed', name: 5 } }), 'name', 'body');
        assertInvalid(await send('POST', orgs(), { body: { slug: 'Not A Slug!', name: 'Typed' } }), 'slug', 'body');
        assertInvalid(await send('POST', orgs(), { body: { slug: 'typed', name: '' } }), 'name', 'body');
        assertInvalid(await send('POST', orgs(), { body: { slug: 'typed', name: 'x'.repeat(201) } }), 'name', 'body');
        assertInvalid(await send('POST', members(), { body: { email: 'god@example.com', role: 'god', password: 'god-password-1' } }), 'role', 'body');
        assertInvalid(await send('POST', members(), { body: { email: 'not an email', role: 'viewer', password: 'some-password-1' } }), 'email', 'body');
        assertInvalid(await send('POST', '/api/users', { body: { email: 'short@example.com', password: 'short' } }), 'password', 'body');
        assertInvalid(await send('POST', '/api/users', { body: { email: 'typed@example.com', password: 'typed-password-1', systemAdmin: 'yes' } }), 'systemAdmin', 'body');
        assertInvalid(await send('POST', '/api/users', { body: { email: ['a@example.com'], password: 'typed-password-1' } }), 'email', 'body');
        assertInvalid(await send('PATCH', `/api/users/${server.admin.userId}`, { body: { systemAdmin: 1 } }), 'systemAdmin', 'body');
        assertInvalid(await send('POST', `/api/orgs/${orgId}/api-keys`, { body: { name: 'typed', expiresAt: 'tomorrow' } }), 'expiresAt', 'body');
        assertInvalid(await send('PATCH', `${members()}/${server.admin.userId}`, { body: { role: null } }), 'role', 'body');
      });
    });

    it('a write refused halfway through its transaction leaves nothing behind', async () => {
      assert.equal((await send('POST', orgs(), { body: { slug: 'taken', name: 'Taken' } })).status, 201);
      await storesNothing(async () => {
        // The organization row is written before the owner turns out not to exist.
        const orphan = assertError(await send('POST', orgs(), { body: { slug: 'orphan', name: 'Orphan', ownerId: 'usr_nobody' } }), 400, 'validation_failed');
        assert.equal(orphan.details?.[0]?.field, 'ownerId');
        assertError(await send('POST', orgs(), { body: { slug: 'default', name: 'Again' } }), 409, 'conflict');
        assertError(await send('PATCH', `/api/orgs/${orgId}`, { body: { slug: 'taken' } }), 409, 'conflict');
        // The user is created before the membership turns out to exist already.
        assertError(await send('POST', members(), { body: { email: server.admin.email, role: 'viewer', password: 'another-password-1' } }), 409, 'conflict');
        assertError(await send('POST', '/api/users', { body: { email: server.admin.email.toUpperCase(), password: 'another-password-1' } }), 409, 'conflict');
      });
      assert.equal((await send('GET', '/api/orgs/orphan')).status, 404);
    });

    it('a query of the wrong type is 400 validation_failed naming the parameter', async () => {
      assertInvalid(await send('GET', `${orgs()}?limit=abc`), 'limit', 'querystring');
      assertInvalid(await send('GET', `${orgs()}?limit=0`), 'limit', 'querystring');
      assertInvalid(await send('GET', `${orgs()}?limit=100000`), 'limit', 'querystring');
      assertInvalid(await send('GET', `${orgs()}?limit=1.5`), 'limit', 'querystring');
      assertInvalid(await send('GET', `${members()}?role=god`), 'role', 'querystring');
      assertInvalid(await send('GET', '/api/users?systemAdmin=perhaps'), 'systemAdmin', 'querystring');
      assertInvalid(await send('GET', '/api/audit?since=yesterday'), 'since', 'querystring');
      assertInvalid(await send('GET', `${orgs()}?q=${'x'.repeat(201)}`), 'q', 'querystring');
    });

    it('unknown fields are refused, naming the field', async () => {
      await storesNothing(async () => {
        assertInvalid(await send('POST', orgs(), { body: { slug: 'unknown', name: 'Unknown', evil: 1 } }), 'evil', 'body');
        assertInvalid(await send('POST', members(), { body: { email: 'x@example.com', role: 'viewer', password: 'x-password-1', systemAdmin: true } }), 'systemAdmin', 'body');
        assertInvalid(await send('POST', '/api/users', { body: { email: 'y@example.com', password: 'y-password-1', id: 'usr_mine' } }), 'id', 'body');
        assertInvalid(await send('PATCH', `/api/orgs/${orgId}`, { body: { name: 'Renamed', id: 'org_other' } }), 'id', 'body');
      });
      assertInvalid(await send('GET', `${orgs()}?evil=1`), 'evil', 'querystring');
    });

    it('a missing or empty body on a write that needs one is 400', async () => {
      await storesNothing(async () => {
        assertError(await send('POST', orgs()), 400, 'validation_failed');
        assertError(await send('POST', orgs(), { body: '' }), 400, 'bad_request');
        assertError(await send('POST', members()), 400, 'validation_failed');
        assertInvalid(await send('POST', orgs(), { body: {} }), 'slug', 'body');
        assertError(await send('PATCH', `/api/orgs/${orgId}`, { body: {} }), 400, 'validation_failed');
        assertError(await send('PATCH', `/api/users/${server.admin.userId}`, { body: {} }), 400, 'validation_failed');
        assertError(await send('POST', orgs(), { body: '[]' }), 400, 'validation_failed');
        assertError(await send('POST', orgs(), { body: 'null' }), 400, 'validation_failed');
        assertError(await send('POST', orgs(), { body: '"acme"' }), 400, 'validation_failed');
      });
    });

    it('a body that is not JSON is 415', async () => {
      await storesNothing(async () => {
        for (const [type, body] of [
          ['text/plain', '{"slug":"plain","name":"Plain"}'],
          ['application/xml', '<org><slug>xml</slug></org>'],
          ['application/x-www-form-urlencoded', 'slug=form&name=Form'],
          ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="slug"\r\n\r\nmulti\r\n--x--'],
        ] as const) {
          assertError(await send('POST', orgs(), { body, headers: { 'content-type': type } }), 415, 'unsupported_media_type');
          assertError(await send('DELETE', `/api/orgs/${orgId}`, { body, headers: { 'content-type': type } }), 415, 'unsupported_media_type');
        }
      });
      // JSON with a charset is JSON.
      const created = await send('POST', orgs(), { body: '{"slug":"charset","name":"Charset"}', headers: { 'content-type': 'application/json; charset=utf-8' } });
      assert.equal(created.status, 201);
    });

    it('a body over the configured limit is 413, whether its length is announced or not', async () => {
      await storesNothing(async () => {
        const big = { slug: 'big', name: 'Big', ownerId: 'x'.repeat(bodyLimit) };
        assertError(await send('POST', orgs(), { body: big }), 413, 'payload_too_large');
        assertError(await send('POST', members(), { body: { email: 'big@example.com', role: 'viewer', password: 'p'.repeat(bodyLimit) } }), 413, 'payload_too_large');
        // Chunked, with no Content-Length: the limit holds while the body streams in.
        const chunk = new TextEncoder().encode(`{"slug":"chunked","name":"${'n'.repeat(1000)}`);
        const stream = new ReadableStream<Uint8Array>({
          pull(controller) {
            controller.enqueue(chunk);
          },
        });
        const response = await fetch(server.url + orgs(), {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: stream,
          duplex: 'half',
        } as RequestInit);
        assertError({ status: response.status, headers: response.headers, body: await response.json() }, 413, 'payload_too_large');
      });
      // Just under the limit is fine.
      const fits = await send('POST', orgs(), { body: { slug: 'fits', name: 'n'.repeat(200) } });
      assert.equal(fits.status, 201);
    });

    it('a cursor this server did not give out is 400', async () => {
      for (const cursor of ['!!!', 'abc', Buffer.from('usr_1; drop table users').toString('base64url'), Buffer.from("' or 1=1 --").toString('base64url'), '%00']) {
        assertError(await send('GET', `/api/users?cursor=${encodeURIComponent(cursor)}`), 400, 'bad_request');
        assertError(await send('GET', `${members()}?cursor=${encodeURIComponent(cursor)}`), 400, 'bad_request');
        assertError(await send('GET', `/api/audit?cursor=${encodeURIComponent(cursor)}`), 400, 'bad_request');
      }
      assertInvalid(await send('GET', `/api/users?cursor=${'a'.repeat(201)}`), 'cursor', 'querystring');
      assert.equal((await counts()).users >= 1, true);
    });

    it('an unknown route or method is 404 with the error body', async () => {
      for (const [method, path] of [
        ['GET', '/api/nope'],
        ['GET', '/nope'],
        ['PUT', orgs()],
        ['POST', '/api/orgs/x/y/z'],
        ['GET', '/api/orgs/x/../../etc/passwd'],
      ] as const) {
        const error = assertError(await send(method, path), 404, 'not_found');
        assert.match(error.message, /No route/);
      }
      assertError(await send('GET', '/api/nope', { token: null }), 404, 'not_found');
    });

    it('huge headers, very long paths and path parameters are a 4xx with the error body', async () => {
      assertError(await send('GET', orgs(), { headers: { 'x-huge': 'h'.repeat(20_000) } }), 431, 'bad_request');
      assertError(await send('GET', `/api/orgs/${'o'.repeat(20_000)}`), 431, 'bad_request');
      assertError(await send('GET', `/api/orgs/${'o'.repeat(101)}`), 400, 'bad_request');
      assertError(await send('GET', `/api/orgs/${'o'.repeat(5000)}/members`), 400, 'bad_request');
      assertError(await send('GET', `/api/orgs/${'o'.repeat(100)}`), 404, 'not_found');
      assertError(await send('GET', `/api/users/${'u'.repeat(100)}`), 404, 'not_found');
      assertError(await send('GET', '/api/orgs/%zz'), 400, 'bad_request');
      assertError(await send('GET', orgs(), { token: 'x'.repeat(10_000) }), 401, 'unauthenticated');
      await storesNothing(async () => {
        assertError(await send('DELETE', `/api/users/${'u'.repeat(101)}`), 400, 'bad_request');
        assertError(await send('PATCH', `/api/orgs/${'o'.repeat(3000)}`, { body: { name: 'Long' } }), 400, 'bad_request');
      });
    });

    it('requests the HTTP parser refuses get the error body too', async () => {
      const garbage = await rawRequest(server.url, 'NOT HTTP AT ALL\r\n\r\n');
      assert.equal(garbage.status, 400);
      assert.deepEqual(garbage.body, { error: { code: 'bad_request', message: 'Malformed HTTP request' } });
      const badLength = await rawRequest(server.url, `POST /api/orgs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}`);
      assert.equal(badLength.status, 400);
      assert.equal((badLength.body as { error: { code: string } }).error.code, 'bad_request');
      const huge = await rawRequest(server.url, `GET /api/orgs HTTP/1.1\r\nHost: x\r\nX-Huge: ${'h'.repeat(20_000)}\r\n\r\n`);
      assert.equal(huge.status, 431);
      assert.deepEqual(Object.keys(huge.body as object), ['error']);
    });

    it('malformed credentials are 401 with the error body, and store nothing', async () => {
      await storesNothing(async () => {
        for (const authorization of ['Basic YWRtaW46YWRtaW4=', 'Bearer', 'Bearer a b', 'bearer not-a-token', `Bearer ${token}x`]) {
          assertError(await send('POST', orgs(), { body: { slug: 'cred', name: 'Cred' }, headers: { authorization }, token: null }), 401, 'unauthenticated');
        }
      });
    });

    it("a caller's request id is kept only when it is sane", async () => {
      const kept = await send('GET', orgs(), { headers: { 'x-request-id': 'trace-1234.abc:5' } });
      assert.equal(kept.headers.get('x-request-id'), 'trace-1234.abc:5');
      const replaced = await send('GET', orgs(), { headers: { 'x-request-id': '<script>alert(1)</script>' } });
      assert.match(replaced.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
      const tooLong = await send('GET', orgs(), { headers: { 'x-request-id': 'r'.repeat(129) } });
      assert.match(tooLong.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    });
  });
}
