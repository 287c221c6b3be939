import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { systemActor } from '../../src/services/actor.ts';
import { backends } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Bulk writes find their sequences by path through a cache of this node: a rename, a move or a
 * deletion committed on the node must take effect at once, never sending values to where a path
 * used to lead.
 */

for (const backend of await backends()) {
  describe(`series paths [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    const base = Date.UTC(2024, 0, 1);
    const write = async (path: string, t: number) => (await server.services.series.recordMany(systemActor, { values: { [path]: 1 }, timestamp: t }))[path];
    const codeOf = (result: Awaited<ReturnType<typeof write>>) => (result && 'error' in result ? result.error.code : result?.stored);

    before(async () => {
      server = await startTestServer(backend, { rrduinoPort: '0' });
      await server.services.resources.create(systemActor, '/default', { name: 'lab', type: 'basic_folder' });
      await server.services.resources.create(systemActor, '/default', { name: 'attic', type: 'basic_folder' });
    });
    after(() => server?.close());

    it('follows a rename at once', async () => {
      await server.services.resources.create(systemActor, '/default/lab', { name: 'a', type: 'sequence', sequence: { dataType: 'numeric' } });
      assert.equal(codeOf(await write('/default/lab/a', base)), true);
      await server.services.resources.update(systemActor, '/default/lab/a', { name: 'b' });
      assert.equal(codeOf(await write('/default/lab/a', base + 1000)), 'not_found');
      assert.equal(codeOf(await write('/default/lab/b', base + 2000)), true);
    });

    it('follows a move and a new resource at the old path', async () => {
      const moved = await server.services.resources.create(systemActor, '/default/lab', { name: 'c', type: 'sequence', sequence: { dataType: 'numeric' } });
      assert.equal(codeOf(await write('/default/lab/c', base)), true);
      await server.services.resources.update(systemActor, '/default/lab/c', { parentPath: '/default/attic' });
      const replacement = await server.services.resources.create(systemActor, '/default/lab', { name: 'c', type: 'sequence', sequence: { dataType: 'numeric' } });
      assert.equal(codeOf(await write('/default/lab/c', base + 1000)), true);
      const last = (id: string) => server.services.store.db.selectFrom('sequences').select('last_t').where('resource_id', '=', id).executeTakeFirstOrThrow();
      assert.equal((await last(replacement.id)).last_t, base + 1000);
      assert.equal((await last(moved.id)).last_t, base);
    });

    it('refuses a deleted sequence at once', async () => {
      await server.services.resources.create(systemActor, '/default/lab', { name: 'd', type: 'sequence', sequence: { dataType: 'numeric' } });
      assert.equal(codeOf(await write('/default/lab/d', base)), true);
      await server.services.resources.delete(systemActor, '/default/lab/d');
      assert.equal(codeOf(await write('/default/lab/d', base + 1000)), 'not_found');
    });
  });
}
