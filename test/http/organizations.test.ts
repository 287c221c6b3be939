import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends } from '../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../helpers/server.ts';

for (const backend of await backends()) {
  describe(`organizations [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(backend);
    });
    after(async () => {
      await server?.close();
    });

    it('a system admin creates an organization and becomes its owner', async () => {
      const created = await request(server.url, 'POST', '/api/orgs', { token: server.admin.token, body: { slug: 'acme', name: 'Acme' } });
      assert.equal(created.status, 201);
      assert.equal(created.body.slug, 'acme');
      const members = await request(server.url, 'GET', `/api/orgs/${created.body.id}/members`, { token: server.admin.token });
      assert.deepEqual(members.body.items.map((m: { role: string }) => m.role), ['owner']);
    });

    it('a duplicate slug is a conflict', async () => {
      const again = await request(server.url, 'POST', '/api/orgs', { token: server.admin.token, body: { slug: 'default', name: 'Again' } });
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'conflict');
    });

    it('a user of one organization gets 404 on another organization', async () => {
      const other = await request(server.url, 'POST', '/api/orgs', { token: server.admin.token, body: { slug: 'other', name: 'Other' } });
      const viewer = await memberWithRole(server, server.admin.orgId, 'viewer@example.com', 'viewer');
      const seen = await request(server.url, 'GET', `/api/orgs/${other.body.id}`, { token: viewer.token });
      assert.equal(seen.status, 404);
      const bySlug = await request(server.url, 'GET', '/api/orgs/other/members', { token: viewer.token });
      assert.equal(bySlug.status, 404);
      const list = await request(server.url, 'GET', '/api/orgs', { token: viewer.token });
      assert.deepEqual(list.body.items.map((o: { slug: string }) => o.slug), ['default']);
    });
  });
}
