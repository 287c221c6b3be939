import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { backends } from '../helpers/backends.ts';
import { boundary, formBody, formContentType, patternBytes, postStream, type Part, type PostReply } from '../helpers/multipart.ts';
import { request, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Package uploads and downloads against input no honest client sends: broken multipart framing,
 * parts out of order or doubled, oversized fields, hostile file names, signatures that are not
 * base64, Range headers that are not ranges. Each is refused (or ignored, for Range) without
 * storing anything or disturbing the server.
 */

for (const backend of await backends()) {
  describe(`packages, hostile input [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let orgId: string;
    const admin = () => server.admin.token;
    const uploadUrl = () => `${server.url}/api/orgs/${orgId}/packages`;
    const rows = () => server.services.store.db.selectFrom('packages').select(['id', 'status']).execute();
    const post = async (body: AsyncIterable<Buffer>, contentType?: string): Promise<PostReply> => {
      const reply = await postStream(uploadUrl(), body, { token: admin(), contentType });
      assert.notEqual(reply, 'aborted');
      return reply as PostReply;
    };
    const fields = (extra: Record<string, string> = {}): Part[] =>
      Object.entries({ version: 'v1', deviceType: 'rpi4', ...extra }).map(([name, value]) => ({ name, value }));
    const file = (filename = 'firmware.bin', content: Buffer = Buffer.from('firmware')): Part => ({ name: 'file', filename, content });
    async function* raw(text: string): AsyncGenerator<Buffer> {
      yield Buffer.from(text);
    }
    /** Refused with 400 (or 413 for limits), the standard error body, and nothing stored. */
    const assertRefused = async (reply: PostReply, what: string, status = 400) => {
      assert.equal(reply.status, status, `${what}: ${JSON.stringify(reply.body)}`);
      assert.equal(typeof reply.body?.error?.code, 'string', what);
      assert.deepEqual(await rows(), [], `${what}: nothing stored`);
    };

    before(async () => {
      server = await startTestServer(backend, { maxPackageSize: String(1024 * 1024) });
      orgId = server.admin.orgId;
      const key = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
      await request(server.url, 'POST', `/api/orgs/${orgId}/signing-keys`, { token: admin(), body: { name: 'k', publicKey: key } });
    });
    after(async () => {
      await server?.close();
    });

    it('refuses malformed multipart bodies', async () => {
      await assertRefused(await post(raw('no boundary at all'), 'multipart/form-data'), 'no boundary');
      await assertRefused(await post(raw('just some bytes, no parts'), formContentType), 'no parts');
      await assertRefused(await post(raw(`--${boundary}\r\nContent-Disposition: form-data; name="version"\r\n\r\nv1\r\n--${boundary}--\r\n`)), 'no file part');
      await assertRefused(await post(raw(`--${boundary}\r\nthis is no header\r\n\r\nv1\r\n--${boundary}--\r\n`)), 'a malformed part header');
      // The request ends cleanly (chunked) in the middle of the file part, with no closing boundary.
      const cut = async function* (): AsyncGenerator<Buffer> {
        for await (const chunk of formBody([...fields(), file('x.bin', patternBytes(0, 100_000))])) {
          if (chunk.length < 1000) yield chunk;
          else return yield chunk.subarray(0, 50_000);
        }
      };
      await assertRefused(await post(cut()), 'a body that ends in the middle of the file');
      await assertRefused(await post(raw(JSON.stringify({ version: 'v1' })), 'application/json'), 'JSON instead of a form', 415);
      await assertRefused(await post(raw('bytes'), 'application/octet-stream'), 'bare bytes', 415);
    });

    it('refuses parts out of order, doubled or misnamed', async () => {
      await assertRefused(await post(formBody([file(), ...fields()])), 'the file before the fields');
      await assertRefused(await post(formBody([...fields(), file(), file('second.bin')])), 'two file parts');
      await assertRefused(await post(formBody([...fields(), file(), { name: 'extra', value: 'late' }])), 'a field after the file');
      await assertRefused(await post(formBody([...fields(), { name: 'firmware', filename: 'f.bin', content: Buffer.from('x') }])), 'a file part not named file');
      await assertRefused(await post(formBody([...fields(), { name: 'file', value: 'not a file' }])), 'a text field named file');
      await assertRefused(await post(formBody([...fields(), { name: 'version', value: 'v2' }, file()])), 'a field twice');
      await assertRefused(await post(formBody([...fields(), { name: '__proto__', value: 'x' }, file()])), 'a prototype field name');
      await assertRefused(await post(formBody([...fields(), { name: 'version', value: '{"a":1}', contentType: 'application/json' }, file()])), 'version as JSON');
    });

    it('refuses huge fields and too many of them', async () => {
      await assertRefused(await post(formBody([...fields({ note: 'x'.repeat(300 * 1024) }), file()])), 'a 300 KiB field');
      await assertRefused(await post(formBody([...fields({ ['n'.repeat(2000)]: 'x' }), file()])), 'a 2000-byte field name');
      const many = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, 'v']));
      await assertRefused(await post(formBody([...fields(many), file()])), '200 fields', 413);
    });

    it('ignores the file name: path traversal goes nowhere, and downloads are named safely', async () => {
      for (const filename of ['../../../../etc/passwd', '..\\..\\windows\\system32', '/absolute/path', 'a"; filename="evil.sh', '\u0000nul']) {
        const reply = await post(formBody([...fields({ version: '../../v1', deviceType: 'a"b\\c/d' }), file(filename)]));
        assert.equal(reply.status, 201, `${filename}: ${JSON.stringify(reply.body)}`);
        const content = await fetch(`${uploadUrl()}/${reply.body.id}/content`, { headers: { authorization: `Bearer ${admin()}` } });
        const disposition = content.headers.get('content-disposition') ?? '';
        assert.match(disposition, /^attachment; filename="[A-Za-z0-9._-]+"$/, filename);
        assert.equal(await content.text(), 'firmware');
        assert.equal((await request(server.url, 'DELETE', `/api/orgs/${orgId}/packages/${reply.body.id}`, { token: admin() })).status, 204);
      }
      assert.deepEqual(await rows(), []);
    });

    it('refuses signatures that are not base64 Ed25519 signatures', async () => {
      for (const signature of ['not base64!!', Buffer.alloc(10).toString('base64'), Buffer.alloc(65).toString('base64'), `${'A'.repeat(86)}=!`, '', Buffer.alloc(64).toString('base64url')]) {
        await assertRefused(await post(formBody([...fields({ signature }), file()])), `signature ${JSON.stringify(signature)}`);
      }
      await assertRefused(await post(formBody([...fields({ signature: Buffer.alloc(64, 7).toString('base64') }), file()])), 'a well-formed signature that does not verify');
    });

    it('ignores Range headers that are not one byte range, and refuses those past the end', async () => {
      const content = patternBytes(0, 1000);
      const reply = await post(formBody([...fields(), file('x.bin', content)]));
      const path = `${uploadUrl()}/${reply.body.id}/content`;
      const get = (range: string) => fetch(path, { headers: { authorization: `Bearer ${admin()}`, range } });
      for (const range of ['bytes=abc', 'bytes=5-2', 'bytes=0-1,5-6', 'items=0-5', 'bytes=--5', 'bytes=-', 'bytes=1-2-3', 'bytes=99999999999999999999-', 'bytes= 0-5', '', 'bytes=0x10-']) {
        const whole = await get(range);
        assert.equal(whole.status, 200, range);
        assert.equal(whole.headers.get('content-range'), null, range);
        assert.ok(Buffer.from(await whole.arrayBuffer()).equals(content), range);
      }
      for (const range of ['bytes=1000-', 'bytes=5000-6000', 'bytes=-0']) assert.equal((await get(range)).status, 416, range);
      for (const tag of ['garbage', '""', 'W/', ',,,']) {
        const response = await fetch(path, { headers: { authorization: `Bearer ${admin()}`, 'if-none-match': tag } });
        assert.equal(response.status, 200, tag);
        await response.arrayBuffer();
      }
      for (const token of ['x', 'a.b', 'a/b/c', '%00', 'e'.repeat(1500)]) {
        const response = await fetch(`${server.url}/api/packages/download/${token}`);
        assert.equal(response.status, 404, token);
      }
      assert.equal((await request(server.url, 'DELETE', `/api/orgs/${orgId}/packages/${reply.body.id}`, { token: admin() })).status, 204);
    });
  });
}
