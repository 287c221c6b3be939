import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends } from '../../helpers/backends.ts';
import { request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { clientVersion, RhizoClient, send, type RawReply } from './client.ts';

/**
 * Hostile and malformed requests to the rhizo API: malformed form bodies, bad JSON strings, bad
 * timestamps, path traversal, huge parameters and the wrong content types are refused with a 4xx
 * (fleetd's error body), and nothing of a refused request is stored.
 */

const bodyLimit = 4096;
const b64 = (text: string) => Buffer.from(text).toString('base64');

for (const backend of await backends()) {
  describe(`rhizo REST, hostile input [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let ctrl: RhizoClient;
    let basic: string;

    /** What the store holds of every resource, revision, value and message: a refusal changes none of it. */
    async function snapshot() {
      const db = server.services.store.db;
      return {
        resources: await db.selectFrom('resources').select(['id', 'path', 'name', 'deleted', 'system_attributes', 'user_attributes', 'modified_at']).orderBy('id').execute(),
        revisions: await db.selectFrom('resource_revisions').select(['id', 'size']).orderBy('id').execute(),
        sequences: await db.selectFrom('sequences').select(['resource_id', 'units', 'min_storage_interval', 'last_t']).orderBy('resource_id').execute(),
        values: await db.selectFrom('sequence_values').select(['sequence_id', 't']).orderBy('sequence_id').orderBy('t').execute(),
        messages: await db.selectFrom('folder_messages').select('id').orderBy('id').execute(),
        pins: await db.selectFrom('provisioning_pins').select('pin').orderBy('pin').execute(),
      };
    }

    function assertRefused(reply: RawReply, status: number, what: string) {
      assert.equal(reply.status, status, `${what}: ${reply.status} ${reply.body.toString().slice(0, 300)}`);
      const body = JSON.parse(reply.body.toString()) as { error: { code: string; message: string } };
      assert.equal(typeof body.error.code, 'string', what);
      assert.ok(body.error.message.length > 0, what);
    }

    /** A request with a body written by hand and the controller's Basic credentials. */
    const rawSend = (method: string, path: string, contentType: string | undefined, body?: string | Buffer) =>
      send(server.url, method, path, { headers: { authorization: basic, ...(contentType && { 'content-type': contentType }) }, body });

    before(async () => {
      server = await startTestServer(backend, { rrduinoPort: '0', bodyLimit: String(bodyLimit) });
      const made = await request(server.url, 'POST', `/api/orgs/${server.admin.orgId}/devices`, { token: server.admin.token, body: { name: 'ctrl' } });
      const key = await request(server.url, 'POST', `/api/orgs/${server.admin.orgId}/api-keys`, { token: server.admin.token, body: { name: 'k', deviceId: made.body.id } });
      ctrl = new RhizoClient(server.url, key.body.key);
      basic = `Basic ${Buffer.from(`${clientVersion}:${key.body.key}`).toString('base64')}`;
      await ctrl.write('/default/ctrl/file.txt', 'content');
      await ctrl.json('POST', '/api/v1/resources', { path: '/default/ctrl', name: 'seq', type: 21, system_attributes: JSON.stringify({ data_type: 1, min_storage_interval: 0 }) });
      await ctrl.updateMultiple({ '/default/ctrl/seq': 1 });
    });
    after(async () => {
      await server?.close();
    });

    it('malformed form bodies and wrong content types are 400', async () => {
      const before = await snapshot();
      const form = 'application/x-www-form-urlencoded';
      assertRefused(await rawSend('POST', '/api/v1/resources', form, 'path=%2Fdefault%2Fctrl&name=bad%ZZ&type=10'), 400, 'bad escape');
      assertRefused(await rawSend('POST', '/api/v1/resources', form, 'path=%2Fdefault&name=%E2%82&type=10'), 400, 'truncated UTF-8');
      assertRefused(await rawSend('POST', '/api/v1/resources', form, 'x'.repeat(0) + Array.from({ length: 300 }, (_, i) => `p${i}=1`).join('&')), 400, 'too many parameters');
      assertRefused(await rawSend('POST', '/api/v1/resources', 'application/json', JSON.stringify({ path: '/default/ctrl', name: 'json', type: 10 })), 400, 'JSON body');
      assertRefused(await rawSend('POST', '/api/v1/resources', 'text/plain', 'path=/default/ctrl&name=t&type=10'), 400, 'text body');
      assertRefused(await rawSend('PUT', '/api/v1/resources/default/ctrl/file.txt', 'application/octet-stream', Buffer.from('raw')), 400, 'octet-stream body');
      assertRefused(await rawSend('GET', '/api/v1/resources/default/ctrl/file.txt', 'application/json', '{"meta":1}'), 400, 'JSON body on GET');
      assertRefused(await rawSend('POST', '/api/v1/resources', 'multipart/form-data; boundary=xyz', '--xyz\r\nContent-Disposition: form-data; name="path"\r\n\r\n/default'), 400, 'truncated multipart');
      assertRefused(await rawSend('POST', '/api/v1/resources', form, 'path=%2Fdefault%2Fctrl&type=10'), 400, 'no name');
      assertRefused(await rawSend('POST', '/api/v1/resources', form, 'path=%2Fdefault%2Fctrl&name=n&type=abc'), 400, 'type not a number');
      assertRefused(await rawSend('POST', '/api/v1/resources', form, 'path=%2Fdefault%2Fctrl&name=n&type=19'), 400, 'unknown type');
      assertRefused(await rawSend('POST', '/api/v1/resources', form, 'path=default%2Fctrl&name=n&type=10'), 400, 'relative parent path');
      assertRefused(await rawSend('PUT', '/api/v1/resources/default/ctrl/file.txt', form, 'data=%%%%'), 400, 'data not base64');
      assertRefused(await rawSend('PUT', '/api/v1/resources/default/ctrl/file.txt', form, `data=${encodeURIComponent('not base64!')}`), 400, 'data not base64');
      assert.deepEqual(await snapshot(), before);
    });

    it('bad JSON strings are 400', async () => {
      const before = await snapshot();
      const cases: Array<[string, string, Record<string, string>]> = [
        ['POST', '/api/v1/resources', { path: '/default/ctrl', name: 's2', type: '21', system_attributes: '{"data_type": 1' }],
        ['POST', '/api/v1/resources', { path: '/default/ctrl', name: 's2', type: '21', system_attributes: '[1]' }],
        ['POST', '/api/v1/resources', { path: '/default/ctrl', name: 's2', type: '21', system_attributes: '{"data_type": 7}' }],
        ['POST', '/api/v1/resources', { path: '/default/ctrl', name: 's2', type: '21', system_attributes: '{"data_type": 1, "max_history": -5}' }],
        ['POST', '/api/v1/resources', { path: '/default/ctrl', name: 's2', type: '21' }],
        ['POST', '/api/v1/resources', { path: '/default/ctrl', name: 'f', type: '10', user_attributes: 'null' }],
        ['PUT', '/api/v1/resources/default/ctrl/file.txt', { user_attributes: '"text"', name: 'renamed.txt' }],
        ['PUT', '/api/v1/resources/default/ctrl/seq', { system_attributes: '{}', min_storage_interval: '-1', units: 'x' }],
        ['PUT', '/api/v1/resources/default/ctrl/seq', { system_attributes: '{oops}', data: b64('5') }],
        ['PUT', '/api/v1/resources', { values: '[1, 2]' }],
        ['PUT', '/api/v1/resources', { values: '{"/default/ctrl/seq": {"nested": 1}}' }],
        ['PUT', '/api/v1/resources', { values: '{"default/ctrl/seq": 1}' }],
        ['PUT', '/api/v1/resources', {}],
        ['POST', '/api/v1/messages', { folder_path: '/default/ctrl', type: 'x', parameters: '{"unterminated' }],
        ['POST', '/api/v1/messages', { folder_path: '/default/ctrl', type: 'x', parameters: '42' }],
        ['POST', '/api/v1/messages', { folder_path: 'default/ctrl', type: 'x', parameters: '{}' }],
      ];
      for (const [method, path, params] of cases) assertRefused(await ctrl.raw(method, path, params), 400, `${method} ${path} ${JSON.stringify(params)}`);
      assert.deepEqual(await snapshot(), before);
    });

    it('bad timestamps are 400', async () => {
      const before = await snapshot();
      for (const bad of ['yesterday', '2024-02-30T00:00:00Z', '2024-01-02T25:00:00Z', '2024-01-02T03:04:05+02:00', '2024-01-02 03:04:05Z', '1969-12-31T23:59:59Z', '']) {
        if (bad !== '') assertRefused(await ctrl.raw('PUT', '/api/v1/resources', { values: '{"/default/ctrl/seq": 2}', timestamp: bad }), 400, `bulk timestamp ${bad}`);
        if (bad === '') continue;
        assertRefused(await ctrl.raw('GET', '/api/v1/resources/default/ctrl/seq', { start_timestamp: bad }), 400, `start ${bad}`);
        assertRefused(await ctrl.raw('GET', '/api/v1/resources/default/ctrl/seq', { end_timestamp: bad }), 400, `end ${bad}`);
        assertRefused(await ctrl.raw('POST', '/api/v1/resources', { path: '/default/ctrl', name: 'dated', type: 10, creation_timestamp: bad }), 400, `creation ${bad}`);
      }
      assertRefused(await ctrl.raw('GET', '/api/v1/resources/default/ctrl/seq', { count: 'many' }), 400, 'count not a number');
      assertRefused(await ctrl.raw('GET', '/api/v1/resources/default/ctrl/seq', { count: 1_000_000_000 }), 400, 'count too large');
      assert.deepEqual(await snapshot(), before);
      // The accepted spellings.
      for (const good of ['2024-01-02T03:04:05Z', '2024-01-02T03:04:05 Z', '2024-01-02T03:04:05.123456Z', '2024-01-02T03:04:05.5 Z']) {
        assert.equal((await ctrl.raw('GET', '/api/v1/resources/default/ctrl/seq', { start_timestamp: good })).status, 200, good);
      }
    });

    it('path traversal and bad names are refused and reach nothing', async () => {
      const before = await snapshot();
      const other = await request(server.url, 'POST', '/api/orgs', { token: server.admin.token, body: { slug: 'victim', name: 'Victim' } });
      assert.equal(other.status, 201);
      // The victim's tree exists (its root and a device folder), so that a traversal would have something to reach.
      assert.equal((await request(server.url, 'POST', `/api/orgs/${other.body.id}/devices`, { token: server.admin.token, body: { name: 'vctrl' } })).status, 201);
      const afterOrg = await snapshot();
      for (const path of ['/api/v1/resources/default/ctrl/../../victim', '/api/v1/resources/default/./ctrl', '/api/v1/resources/default/ctrl/%2e%2e/%2e%2e/victim', '/api/v1/resources/default//ctrl']) {
        const reply = await ctrl.raw('GET', path, { meta: 1 });
        assert.ok(reply.status === 400 || reply.status === 404, `${path}: ${reply.status}`);
        assert.notEqual(reply.status, 200);
        assertRefused(await ctrl.raw('PUT', path, { data: b64('x') }), reply.status, `PUT ${path}`);
      }
      for (const name of ['..', '.', 'a/b', 'tab\there', '']) {
        assertRefused(await ctrl.raw('POST', '/api/v1/resources', { path: '/default/ctrl', name, type: 10 }), 400, `name ${JSON.stringify(name)}`);
      }
      assertRefused(await ctrl.raw('POST', '/api/v1/resources', { path: '/default/ctrl/../../victim', name: 'x', type: 10 }), 400, 'parent with ..');
      assertRefused(await ctrl.raw('PUT', '/api/v1/resources/default/ctrl/file.txt', { parent: '/default/../victim' }), 400, 'move with ..');
      assertRefused(await ctrl.raw('PUT', '/api/v1/resources/default/ctrl/file.txt', { name: '..' }), 400, 'rename to ..');
      assert.deepEqual(await snapshot(), afterOrg);
      assert.ok(afterOrg.resources.length > before.resources.length);
    });

    it('huge parameters are refused', async () => {
      const before = await snapshot();
      assertRefused(await ctrl.raw('POST', '/api/v1/resources', { path: '/default/ctrl', name: 'n'.repeat(1000), type: 10 }), 400, 'long name');
      assertRefused(await ctrl.raw('POST', '/api/v1/resources', { path: '/default/ctrl', name: 'big.txt', type: 20, data: b64('x'.repeat(bodyLimit)) }), 413, 'body over the limit');
      assertRefused(await ctrl.raw('GET', '/api/v1/resources/default/ctrl/file.txt', { meta: 1, pad: 'x'.repeat(bodyLimit * 2) }), 413, 'GET body over the limit');
      assertRefused(await ctrl.raw('POST', '/api/v1/messages', { folder_path: '/default/ctrl', type: 't'.repeat(41), parameters: '{}' }), 400, 'long message type');
      assertRefused(await ctrl.raw('POST', '/api/v1/resources', { path: '/default/ctrl', [`p${'x'.repeat(200)}`]: 1, name: 'n', type: 10 }), 400, 'long parameter name');
      assertRefused(await ctrl.raw('PUT', '/api/v1/resources/default/ctrl/seq', { system_attributes: '{}', units: 'u'.repeat(101) }), 400, 'long units');
      assert.deepEqual(await snapshot(), before);
    });

    it('a PIN is not guessed: unknown PINs and codes are 404, malformed ones 400, and enough wrong guesses are throttled', async () => {
      const keyless = new RhizoClient(server.url, 'x');
      const { pin } = await keyless.requestPin();
      const before = await snapshot();
      assertRefused(await keyless.raw('GET', '/api/v1/pins/12', { pin_code: 'A' }), 400, 'PIN out of range');
      assertRefused(await keyless.raw('GET', '/api/v1/pins/abcd', { pin_code: 'A' }), 400, 'PIN not a number');
      let status = 0;
      for (let i = 0; i < 30 && status !== 429; i++) status = (await keyless.raw('GET', `/api/v1/pins/${pin}`, { pin_code: `WRONG${i}` })).status;
      assert.equal(status, 429, 'wrong codes are throttled');
      assert.deepEqual(await snapshot(), before);
    });
  });
}
