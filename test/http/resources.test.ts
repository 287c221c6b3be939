import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { backends } from '../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../helpers/server.ts';

/** The resource tree over REST: /api/resources/<organization>/<path>. */

for (const backend of await backends()) {
  describe(`resources API [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let orgId: string;
    let viewer: string;
    let operator: string;
    let deviceKey: string;
    let outsider: string;
    const call = (method: string, path: string, token?: string, body?: unknown, headers?: Record<string, string>) =>
      request(server.url, method, `/api/resources/${path}`, { token, body, headers });
    const admin = () => server.admin.token;
    const putBytes = (path: string, token: string | undefined, bytes: Buffer) =>
      fetch(`${server.url}/api/resources/${path}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', ...(token && { authorization: `Bearer ${token}` }) }, body: bytes });

    before(async () => {
      server = await startTestServer(backend, { blobThreshold: '100' });
      orgId = server.admin.orgId;
      viewer = (await memberWithRole(server, orgId, 'viewer@example.com', 'viewer')).token;
      operator = (await memberWithRole(server, orgId, 'operator@example.com', 'operator')).token;
      const device = await request(server.url, 'POST', `/api/orgs/${orgId}/devices`, { token: admin(), body: { name: 'sensor' } });
      deviceKey = (await request(server.url, 'POST', `/api/orgs/${orgId}/api-keys`, { token: admin(), body: { name: 'k', deviceId: device.body.id } })).body.key;
      const owner = await request(server.url, 'POST', '/api/users', { token: admin(), body: { email: 'b-owner@example.com', password: 'b-owner-password' } });
      const other = await request(server.url, 'POST', '/api/orgs', { token: admin(), body: { slug: 'bravo', name: 'Bravo', ownerId: owner.body.id } });
      outsider = (await memberWithRole(server, other.body.id, 'b-member@example.com', 'owner')).token;
    });
    after(async () => {
      await server?.close();
    });

    it('creates, reads, lists, renames and deletes', async () => {
      const made = await call('POST', 'default', operator, { name: 'plant', type: 'basic_folder', userAttributes: { site: 'north' } });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      assert.equal(made.body.path, '/default/plant');
      const seq = await call('POST', 'default/plant/line 1', operator, { name: 'flow', type: 'sequence', createParents: true, sequence: { dataType: 'numeric', units: 'l/min' } });
      assert.equal(seq.status, 201, JSON.stringify(seq.body));
      assert.equal(seq.body.path, '/default/plant/line 1/flow');
      assert.equal((await call('GET', 'default/plant/line%201/flow', viewer)).body.type, 'sequence');
      assert.equal((await call('PATCH', 'default/plant/line%201/flow', operator, { sequence: { units: 'm3/h', dataType: 'text' } })).status, 400);
      assert.equal((await call('PATCH', 'default/plant/line%201/flow', viewer, { sequence: { units: 'm3/h' } })).status, 403);
      assert.equal((await call('PATCH', 'default/plant/line%201/flow', operator, { sequence: { units: 'm3/h' } })).status, 200);
      const children = await call('GET', 'default/plant?view=children&recursive=true', viewer);
      assert.deepEqual(children.body.items.map((r: { path: string }) => r.path), ['/default/plant/line 1', '/default/plant/line 1/flow']);
      const filtered = await call('GET', 'default?view=children&recursive=true&type=sequence&filter=fl*', viewer);
      assert.deepEqual(filtered.body.items.map((r: { path: string }) => r.path), ['/default/plant/line 1/flow']);
      const renamed = await call('PATCH', 'default/plant', operator, { name: 'factory' });
      assert.equal(renamed.status, 200);
      assert.equal((await call('GET', 'default/factory/line%201/flow', viewer)).status, 200);
      assert.equal((await call('POST', 'default', operator, { name: 'factory', type: 'basic_folder' })).status, 409);
      assert.equal((await call('DELETE', 'default/factory', operator)).status, 204);
      assert.equal((await call('GET', 'default/factory', operator)).status, 404);
      assert.equal((await call('POST', 'default', operator, { name: 'factory', type: 'basic_folder' })).status, 201);
    });

    it('stores file content as revisions, large ones in blob storage, and gives them back identical', async () => {
      assert.equal((await call('POST', 'default', operator, { name: 'garbled.txt', type: 'file', content: 'not base64!' })).status, 400);
      assert.equal((await call('POST', 'default', operator, { name: 'notes.txt', type: 'file', content: Buffer.from('first').toString('base64') })).status, 201);
      const large = randomBytes(5000);
      const put = await putBytes('default/notes.txt', operator, large);
      assert.equal(put.status, 200);
      const revision = (await put.json()) as { id: string; storage: string; size: number };
      assert.equal(revision.storage, 'blob');
      const content = await fetch(`${server.url}/api/resources/default/notes.txt?view=content`, { headers: { authorization: `Bearer ${viewer}` } });
      assert.equal(content.status, 200);
      assert.equal(content.headers.get('content-type'), 'application/octet-stream');
      assert.ok(Buffer.from(await content.arrayBuffer()).equals(large));
      const revisions = await call('GET', 'default/notes.txt?view=revisions', viewer);
      assert.deepEqual(revisions.body.items.map((r: { storage: string }) => r.storage), ['database', 'blob']);
      const first = await fetch(`${server.url}/api/resources/default/notes.txt?view=content&revision=${revisions.body.items[0].id}`, { headers: { authorization: `Bearer ${viewer}` } });
      assert.equal(await first.text(), 'first');
      assert.equal((await putBytes('default/notes.txt', viewer, large)).status, 403);
      assert.equal((await call('PUT', 'default/notes.txt', operator, { not: 'bytes' })).status, 415);
    });

    it('answers 401 without credentials except for public reads, 403 to readers who write, 404 to other organizations', async () => {
      await call('POST', 'default', admin(), { name: 'public', type: 'basic_folder', permissions: [[100, null, 10]] });
      await call('POST', 'default/public', admin(), { name: 'hello.txt', type: 'file', content: Buffer.from('hi').toString('base64') });
      assert.equal((await call('GET', 'default/public/hello.txt')).status, 200);
      assert.equal(await (await fetch(`${server.url}/api/resources/default/public/hello.txt?view=content`)).text(), 'hi');
      assert.equal((await call('GET', 'default/public?view=children')).body.items.length, 1);
      assert.equal((await call('GET', 'default')).status, 404);
      assert.equal((await call('GET', 'default/public', 'not-a-token')).status, 401);
      for (const [method, body] of [['POST', { name: 'x', type: 'file' }], ['PATCH', { name: 'y' }], ['DELETE', undefined]] as const) {
        assert.equal((await call(method, 'default/public', undefined, body)).status, 401, method);
        assert.equal((await call(method, 'default/public', viewer, body)).status, 403, method);
        assert.equal((await call(method, 'default/public', outsider, body)).status, 403, `${method} by a member of another organization who can read it`);
      }
      // Another organization's members see nothing that is not public.
      for (const path of ['default', 'default/factory', 'default/notes.txt?view=content', 'default?view=children']) {
        const reply = await call('GET', path, outsider);
        assert.equal(reply.status, 404, path);
        assert.equal(reply.body.error.code, 'not_found');
      }
      assert.equal((await call('POST', 'default', outsider, { name: 'intruder', type: 'basic_folder' })).status, 404);
      assert.equal((await call('DELETE', 'default/notes.txt', outsider)).status, 404);
      assert.equal((await call('GET', 'bravo', operator)).status, 404);
      assert.equal((await call('GET', 'nowhere', operator)).status, 404);
    });

    it('lets only admins set permissions, and a device write in its organization', async () => {
      assert.equal((await call('POST', 'default', operator, { name: 'shared', type: 'basic_folder', permissions: [[100, null, 20]] })).status, 403);
      assert.equal((await call('POST', 'default', operator, { name: 'shared', type: 'basic_folder' })).status, 201);
      assert.equal((await call('PATCH', 'default/shared', operator, { permissions: [[100, null, 20]] })).status, 403);
      const closed = await call('PATCH', 'default/shared', admin(), { permissions: [[110, orgId, 10], [120, orgId, 0]] });
      assert.equal(closed.status, 200);
      assert.equal((await call('POST', 'default/shared', operator, { name: 'x', type: 'file' })).status, 403);
      assert.equal((await call('GET', 'default/shared', deviceKey)).status, 404);
      assert.equal((await call('POST', 'default/sensor', deviceKey, { name: 'temperature', type: 'sequence', sequence: { dataType: 'numeric' } })).status, 201);
      assert.equal((await call('POST', 'default', admin(), { name: 'bad', type: 'basic_folder', permissions: [[100, 'someone', 10]] })).status, 400);
    });

    it('records creation and deletion in the audit log', async () => {
      const audit = await request(server.url, 'GET', `/api/orgs/${orgId}/audit?action=resource.delete`, { token: admin() });
      assert.ok(audit.body.items.some((e: { details: { path: string } }) => e.details.path === '/default/factory'));
    });
  });
}
