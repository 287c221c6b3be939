import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { FleetError } from '../../src/core/errors.ts';
import { systemActor } from '../../src/services/actor.ts';
import { packageBlobKey } from '../../src/services/packages/package.ts';
import { nowIso } from '../../src/store/page.ts';
import { backends } from '../helpers/backends.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * The Packages service as the other parts call it (the update resolver, the RDFM adapter): uploads
 * from any stream, mandatory signatures, the sweep of crash leftovers, and the lookups without
 * authorization.
 */

const fleetError = (code: string) => (error: unknown) => error instanceof FleetError && error.code === code;

for (const backend of await backends()) {
  describe(`Packages service [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let orgId: string;
    const keys = generateKeyPairSync('ed25519');
    const signatureOf = (content: Buffer) => sign(null, createHash('sha256').update(content).digest(), keys.privateKey).toString('base64');
    const packages = () => server.services.packages;
    const db = () => server.services.store.db;
    const upload = (version: string, content: Buffer, deviceType = 'rpi4', metadata?: Record<string, string>) =>
      packages().upload(systemActor, orgId, { version, deviceType, metadata, signature: signatureOf(content) }, Readable.from([content]));

    before(async () => {
      server = await startTestServer(backend, { requirePackageSignature: 'true', maxPackageSize: '100000' });
      orgId = server.admin.orgId;
      await packages().addSigningKey(systemActor, orgId, { name: 'release', publicKey: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    });
    after(async () => {
      await server?.close();
    });

    it('takes a package only with a signature when requirePackageSignature is on', async () => {
      await assert.rejects(packages().upload(systemActor, orgId, { version: 'v0', deviceType: 'rpi4' }, Readable.from([Buffer.from('x')])), fleetError('bad_request'));
      const pkg = await upload('v0', Buffer.from('signed'));
      assert.equal(pkg.signature, signatureOf(Buffer.from('signed')));
      assert.ok(pkg.signingKeyId);
    });

    it('rejects with the error of a content stream that fails, and leaves nothing', async () => {
      const before = await db().selectFrom('packages').select('id').execute();
      const failing = new PassThrough();
      const uploading = packages().upload(systemActor, orgId, { version: 'v1', deviceType: 'rpi4', signature: signatureOf(Buffer.from('x')) }, failing);
      failing.write(Buffer.alloc(1000));
      setTimeout(() => failing.destroy(new FleetError('bad_request', 'the device went away')), 20);
      await assert.rejects(uploading, /the device went away/);
      // Destroyed before the service read anything.
      const early = new PassThrough();
      early.destroy(new Error('gone at once'));
      await assert.rejects(packages().upload(systemActor, orgId, { version: 'v1', deviceType: 'rpi4', signature: signatureOf(Buffer.from('x')) }, early), fleetError('bad_request'));
      await assert.rejects(upload('v1', Buffer.alloc(100_001)), fleetError('payload_too_large'));
      assert.deepEqual(await db().selectFrom('packages').select('id').execute(), before);
    });

    it('finds ready packages without authorization: candidates oldest first, byIds in the order asked', async () => {
      const a = await upload('v2', Buffer.from('a'), 'esp32');
      const b = await upload('v3', Buffer.from('b'), 'esp32', { 'requires:version': 'v2' });
      await upload('v3', Buffer.from('c'), 'other');
      assert.deepEqual((await packages().candidates(orgId, 'esp32')).map((p) => p.id), [a.id, b.id]);
      assert.deepEqual(await packages().candidates('org_unknown', 'esp32'), []);
      assert.deepEqual((await packages().byIds(orgId, [b.id, 'pkg_unknown', a.id])).map((p) => p.id), [b.id, a.id]);
      assert.deepEqual(await packages().byIds(orgId, []), []);
      assert.deepEqual((await packages().find(orgId, b.id))?.metadata, { 'requires:version': 'v2' });
      assert.equal(await packages().find('org_other', b.id), undefined);
    });

    it('makes download links that lead back to the package, and refuses others', async () => {
      const pkg = await upload('v4', Buffer.from('link me'));
      const link = await packages().downloadLink(pkg, 'https://fleet.example.com', { deviceId: 'dev_x', ttlSeconds: 60 });
      assert.match(link.url, /^https:\/\/fleet\.example\.com\/api\/packages\/download\/[\w-]+\.[\w-]+$/);
      const lifetime = Date.parse(link.expiresAt) - Date.now();
      assert.ok(lifetime > 58_000 && lifetime <= 67_500, `a minute, rounded up to an eighth of it: ${lifetime} ms`);
      assert.equal((await packages().downloadLink(pkg, 'https://fleet.example.com', { deviceId: 'dev_x', ttlSeconds: 60 })).url, link.url, 'the same link while its expiry rounds to the same time');
      const token = link.url.split('/').pop()!;
      assert.equal((await packages().byLink(token)).id, pkg.id);
      await assert.rejects(packages().byLink(`${token}x`), fleetError('not_found'));
      const chunks: Buffer[] = [];
      for await (const chunk of await packages().open(pkg, { start: 5, end: 6 })) chunks.push(chunk as Buffer);
      assert.equal(Buffer.concat(chunks).toString(), 'me');
    });

    it('sweeps uploads a crash left behind for over an hour, blob and row, and nothing else', async () => {
      const leftover = (id: string, createdAt: string) => ({
        id,
        org_id: orgId,
        version: 'v9',
        device_type: 'rpi4',
        metadata: '{}',
        size: 0,
        sha256: '',
        blob_key: packageBlobKey(orgId, id),
        signature: null,
        signing_key_id: null,
        status: 'uploading' as const,
        created_by: 'usr_x',
        created_at: createdAt,
        ready_at: null,
      });
      const old = leftover('pkg_00000000000000000000000old', nowIso(Date.now() - 2 * 3600_000));
      const recent = leftover('pkg_0000000000000000000recent', nowIso(Date.now() - 60_000));
      await db().insertInto('packages').values([old, recent]).execute();
      await server.services.blobs.put(old.blob_key, Buffer.from('partial'));
      const ready = await upload('v10', Buffer.from('kept'));
      assert.equal(await packages().sweepAbandonedUploads(), 1);
      assert.equal(await server.services.blobs.stat(old.blob_key), undefined);
      const left = await db().selectFrom('packages').select('id').where('id', 'in', [old.id, recent.id, ready.id]).orderBy('id').execute();
      assert.deepEqual(left.map((row) => row.id).sort(), [recent.id, ready.id].sort());
      assert.equal(await packages().sweepAbandonedUploads(), 0, 'a second sweep (another node) finds nothing');
      await db().deleteFrom('packages').where('id', '=', recent.id).execute();
    });
  });
}
