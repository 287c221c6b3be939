import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LocalBlobStore } from '../../src/blob/local.ts';
import { newId } from '../../src/core/ids.ts';
import { nowIso } from '../../src/store/page.ts';
import { backends } from '../helpers/backends.ts';
import { formBody, formContentType, patternBytes, patternContent, postStream, type Part, type PostReply } from '../helpers/multipart.ts';
import { readUntil } from '../helpers/waiting.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../helpers/server.ts';

/** OTA packages over REST: upload (streamed multipart), list, get, delete, downloads with ranges, signed links, signing keys. */

const maxPackageSize = 1024 * 1024;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const ed25519 = () => generateKeyPairSync('ed25519');
const pemOf = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }).toString();
/** What a signer sends: Ed25519 over the 32 raw bytes of the content's SHA-256. */
const signatureOf = (content: Buffer, privateKey: KeyObject) => sign(null, createHash('sha256').update(content).digest(), privateKey).toString('base64');

/** Every file under a folder, relative to it (none when it does not exist). */
async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name).slice(root.length + 1));
}

for (const backend of await backends()) {
  describe(`packages API [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let orgId: string;
    let viewer: string;
    let operator: string;
    let deviceKey: string;
    let deviceId: string;
    let outsider: string;
    let outsiderOrgId: string;
    let outsiderDeviceKey: string;
    const admin = () => server.admin.token;
    const packagesPath = () => `/api/orgs/${orgId}/packages`;
    const call = (method: string, path: string, token?: string, body?: unknown, headers?: Record<string, string>) => request(server.url, method, path, { token, body, headers });
    const download = (path: string, token?: string, headers: Record<string, string> = {}, method = 'GET') =>
      fetch(`${server.url}${path}`, { method, headers: { ...headers, ...(token && { authorization: `Bearer ${token}` }) } });
    const bytesOf = async (response: Response) => Buffer.from(await response.arrayBuffer());

    const fieldsOf = (fields: Record<string, string>): Part[] => Object.entries(fields).map(([name, value]) => ({ name, value }));
    const upload = async (fields: Record<string, string>, content: Buffer | (() => AsyncIterable<Buffer>), token = admin(), org = orgId): Promise<PostReply> => {
      const reply = await postStream(`${server.url}/api/orgs/${org}/packages`, formBody([...fieldsOf(fields), { name: 'file', filename: 'firmware.bin', content }]), { token });
      assert.notEqual(reply, 'aborted');
      return reply as PostReply;
    };
    const rows = () => server.services.store.db.selectFrom('packages').select(['id', 'status']).execute();
    const blobRoot = () => (server.services.blobs as LocalBlobStore).root;
    /** Nothing left of uploads that failed: only the ready packages' rows and their blobs. */
    const assertNothingLeft = async (readyBefore: string[]) => {
      const now = await readUntil(rows, (list) => list.every((row) => row.status === 'ready'));
      assert.deepEqual(now.map((row) => row.id).sort(), [...readyBefore].sort());
      const files = await readUntil(() => filesUnder(blobRoot()), (list) => list.filter((f) => !f.startsWith('packages/')).length === 0 && list.length === readyBefore.length);
      assert.deepEqual(files.sort(), readyBefore.map((id) => `packages/${orgId}/${id}`).sort());
    };
    const readyIds = async () => (await rows()).filter((row) => row.status === 'ready').map((row) => row.id);

    before(async () => {
      server = await startTestServer(backend, { maxPackageSize: String(maxPackageSize) });
      orgId = server.admin.orgId;
      viewer = (await memberWithRole(server, orgId, 'viewer@example.com', 'viewer')).token;
      operator = (await memberWithRole(server, orgId, 'operator@example.com', 'operator')).token;
      const device = await call('POST', `/api/orgs/${orgId}/devices`, admin(), { name: 'gateway' });
      deviceId = device.body.id;
      deviceKey = (await call('POST', `/api/orgs/${orgId}/api-keys`, admin(), { name: 'device key', deviceId })).body.key;
      const owner = await call('POST', '/api/users', admin(), { email: 'b-owner@example.com', password: 'b-owner-password' });
      const other = await call('POST', '/api/orgs', admin(), { slug: 'bravo', name: 'Bravo', ownerId: owner.body.id });
      outsiderOrgId = other.body.id;
      outsider = (await memberWithRole(server, outsiderOrgId, 'b-member@example.com', 'owner')).token;
      const otherDevice = await call('POST', `/api/orgs/${outsiderOrgId}/devices`, admin(), { name: 'b-gateway' });
      outsiderDeviceKey = (await call('POST', `/api/orgs/${outsiderOrgId}/api-keys`, admin(), { name: 'b device key', deviceId: otherDevice.body.id })).body.key;
    });
    after(async () => {
      await server?.close();
    });

    it('uploads, lists, gets and downloads a package, whole and in ranges', async () => {
      const content = patternBytes(0, 300_000);
      const created = await upload({ version: 'v2', deviceType: 'rpi4', 'requires:version': 'v1', metadata: JSON.stringify({ channel: 'stable' }) }, patternContent(content.length, 7000));
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const pkg = created.body;
      assert.match(pkg.id, /^pkg_/);
      assert.equal(pkg.orgId, orgId);
      assert.equal(pkg.size, content.length);
      assert.equal(pkg.sha256, sha256(content));
      assert.deepEqual(pkg.metadata, { channel: 'stable', 'requires:version': 'v1' });
      assert.equal(pkg.signature, null);
      assert.equal(pkg.createdBy, server.admin.userId);
      await upload({ version: 'v1', deviceType: 'esp32' }, Buffer.from('tiny'));

      const listed = await call('GET', packagesPath(), viewer);
      assert.equal(listed.status, 200);
      assert.ok(listed.body.items.some((p: { id: string }) => p.id === pkg.id));
      const filtered = await call('GET', `${packagesPath()}?deviceType=rpi4&version=v2`, viewer);
      assert.deepEqual(filtered.body.items.map((p: { id: string }) => p.id), [pkg.id]);
      assert.deepEqual((await call('GET', `${packagesPath()}?deviceType=rpi4&version=v9`, viewer)).body.items, []);
      assert.deepEqual((await call('GET', `${packagesPath()}/${pkg.id}`, viewer)).body, pkg);

      const path = `${packagesPath()}/${pkg.id}/content`;
      const whole = await download(path, viewer);
      assert.equal(whole.status, 200);
      assert.equal(whole.headers.get('content-type'), 'application/octet-stream');
      assert.equal(whole.headers.get('content-length'), String(content.length));
      assert.equal(whole.headers.get('accept-ranges'), 'bytes');
      assert.equal(whole.headers.get('etag'), `"${pkg.sha256}"`);
      assert.equal(whole.headers.get('content-disposition'), 'attachment; filename="rpi4-v2"');
      assert.ok((await bytesOf(whole)).equals(content));

      const size = content.length;
      const ranges: Array<[string, number, number]> = [
        ['bytes=0-99', 0, 99],
        ['bytes=150000-150999', 150_000, 150_999],
        ['bytes=-500', size - 500, size - 1],
        ['bytes=299000-', 299_000, size - 1],
        ['bytes=299990-400000', 299_990, size - 1],
        ['bytes=-999999', 0, size - 1],
      ];
      for (const [range, start, end] of ranges) {
        const part = await download(path, viewer, { range });
        assert.equal(part.status, 206, range);
        assert.equal(part.headers.get('content-range'), `bytes ${start}-${end}/${size}`, range);
        assert.equal(part.headers.get('content-length'), String(end - start + 1), range);
        assert.ok((await bytesOf(part)).equals(content.subarray(start, end + 1)), range);
      }
      for (const range of [`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, 'bytes=-0']) {
        const refused = await download(path, viewer, { range });
        assert.equal(refused.status, 416, range);
        assert.equal(refused.headers.get('content-range'), `bytes */${size}`, range);
        assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'range_not_satisfiable');
      }

      const head = await download(path, viewer, {}, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(size));
      assert.equal(head.headers.get('etag'), `"${pkg.sha256}"`);
      assert.equal((await bytesOf(head)).length, 0);
      const headRange = await download(path, viewer, { range: 'bytes=10-19' }, 'HEAD');
      assert.equal(headRange.status, 206);
      assert.equal(headRange.headers.get('content-length'), '10');
    });

    it('answers If-None-Match with 304 and honours If-Range only for its own ETag', async () => {
      const content = patternBytes(1000, 5000);
      const pkg = (await upload({ version: 'v3', deviceType: 'rpi4' }, content)).body;
      const path = `${packagesPath()}/${pkg.id}/content`;
      const etag = `"${pkg.sha256}"`;
      for (const tag of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
        const cached = await download(path, viewer, { 'if-none-match': tag });
        assert.equal(cached.status, 304, tag);
        assert.equal(cached.headers.get('etag'), etag);
        assert.equal((await bytesOf(cached)).length, 0);
      }
      assert.equal((await download(path, viewer, { 'if-none-match': '"other"' })).status, 200);
      const kept = await download(path, viewer, { range: 'bytes=0-9', 'if-range': etag });
      assert.equal(kept.status, 206);
      assert.ok((await bytesOf(kept)).equals(content.subarray(0, 10)));
      for (const validator of ['"stale"', 'Sat, 21 Nov 2026 10:00:00 GMT', `W/${etag}`]) {
        const everything = await download(path, viewer, { range: 'bytes=0-9', 'if-range': validator });
        assert.equal(everything.status, 200, validator);
        assert.ok((await bytesOf(everything)).equals(content), validator);
      }
    });

    it('resumes a download that was cut off, from where it stopped', async () => {
      const content = patternBytes(0, 900_000);
      const pkg = (await upload({ version: 'v4', deviceType: 'rpi4' }, patternContent(content.length))).body;
      const path = `${packagesPath()}/${pkg.id}/content`;
      const first = await download(path, deviceKey);
      const reader = first.body!.getReader();
      const received: Buffer[] = [];
      let count = 0;
      while (count < 100_000) {
        const { value, done } = await reader.read();
        assert.ok(!done, 'the download ended before it was cut off');
        received.push(Buffer.from(value));
        count += value.length;
      }
      await reader.cancel();
      const rest = await download(path, deviceKey, { range: `bytes=${count}-`, 'if-range': first.headers.get('etag')! });
      assert.equal(rest.status, 206);
      assert.equal(rest.headers.get('content-range'), `bytes ${count}-${content.length - 1}/${content.length}`);
      received.push(await bytesOf(rest));
      assert.ok(Buffer.concat(received).equals(content));
    });

    it('hands out signed links that download without credentials, and refuses tampered or expired ones', async () => {
      const content = patternBytes(7, 20_000);
      const pkg = (await upload({ version: 'v5', deviceType: 'rpi4' }, content)).body;
      const link = await call('POST', `${packagesPath()}/${pkg.id}/link`, deviceKey);
      assert.equal(link.status, 200, JSON.stringify(link.body));
      const url = new URL(link.body.url);
      assert.equal(url.origin, server.url);
      assert.match(url.pathname, /^\/api\/packages\/download\/[\w-]+\.[\w-]+$/);
      const ttl = Date.parse(link.body.expiresAt) - Date.now();
      // packageLinkTtl, rounded up to an eighth of it.
      assert.ok(ttl > 3500_000 && ttl <= 4050_000, `expires in ${ttl} ms`);
      const fetched = await fetch(link.body.url);
      assert.equal(fetched.status, 200, await fetched.clone().text());
      assert.equal(fetched.headers.get('etag'), `"${pkg.sha256}"`);
      assert.ok((await bytesOf(fetched)).equals(content));
      const part = await fetch(link.body.url, { headers: { range: 'bytes=100-199' } });
      assert.equal(part.status, 206);
      assert.ok((await bytesOf(part)).equals(content.subarray(100, 200)));
      const head = await fetch(link.body.url, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(content.length));

      const token = url.pathname.split('/').pop()!;
      const [payload, mac] = token.split('.') as [string, string];
      const flipped = `${payload}.${mac.slice(0, -2)}${mac.endsWith('AA') ? 'BB' : 'AA'}`;
      const otherPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), o: outsiderOrgId })).toString('base64url');
      for (const bad of [flipped, `${otherPayload}.${mac}`, 'garbage', `${payload}.`]) {
        const refused = await fetch(`${server.url}/api/packages/download/${bad}`);
        assert.equal(refused.status, 404, bad);
        assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'not_found');
      }
      const shortLived = await server.services.packages.downloadLink(pkg, server.url, { ttlSeconds: 1 });
      assert.equal((await fetch(shortLived.url, { method: 'HEAD' })).status, 200);
      await new Promise((resolve) => setTimeout(resolve, Date.parse(shortLived.expiresAt) - Date.now() + 50));
      assert.equal((await fetch(shortLived.url)).status, 404);
    });

    it('shows an upload only once it is completely stored', async () => {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let halfway!: () => void;
      const reachedHalfway = new Promise<void>((resolve) => (halfway = resolve));
      const content = async function* () {
        yield patternBytes(0, 100_000);
        halfway();
        await released;
        yield patternBytes(100_000, 100_000);
      };
      const uploading = upload({ version: 'v6', deviceType: 'slow' }, content);
      await reachedHalfway;
      const inFlight = await readUntil(rows, (list) => list.some((row) => row.status === 'uploading'));
      const id = inFlight.find((row) => row.status === 'uploading')!.id;
      assert.deepEqual((await call('GET', `${packagesPath()}?deviceType=slow`, admin())).body.items, []);
      assert.equal((await call('GET', `${packagesPath()}/${id}`, admin())).status, 404);
      assert.equal((await download(`${packagesPath()}/${id}/content`, admin())).status, 404);
      assert.equal(await server.services.packages.find(orgId, id), undefined);
      release();
      const done = await uploading;
      assert.equal(done.status, 201);
      assert.equal(done.body.id, id);
      assert.equal((await call('GET', `${packagesPath()}?deviceType=slow`, admin())).body.items.length, 1);
    });

    it('leaves neither row nor blob behind when the client goes away in the middle of an upload', async () => {
      const before = await readyIds();
      const outcome = await postStream(
        `${server.url}${packagesPath()}`,
        formBody([...fieldsOf({ version: 'v7', deviceType: 'rpi4' }), { name: 'file', filename: 'x.bin', content: patternContent(900_000) }]),
        { token: admin(), abortAfter: 400_000 },
      );
      assert.equal(outcome, 'aborted');
      await assertNothingLeft(before);
    });

    it('refuses a package over maxPackageSize with 413, whether its length is declared or not, and stores nothing', async () => {
      const before = await readyIds();
      const streamed = await upload({ version: 'v8', deviceType: 'rpi4' }, patternContent(maxPackageSize + 1));
      assert.equal(streamed.status, 413, JSON.stringify(streamed.body));
      assert.equal(streamed.body.error.code, 'payload_too_large');
      const chunks: Buffer[] = [];
      for await (const chunk of formBody([...fieldsOf({ version: 'v8', deviceType: 'rpi4' }), { name: 'file', filename: 'x.bin', content: patternBytes(0, 3 * maxPackageSize) }])) chunks.push(chunk);
      // With a Content-Length this far over the limit, the answer comes before the body is read.
      const declared = await fetch(`${server.url}${packagesPath()}`, { method: 'POST', headers: { authorization: `Bearer ${admin()}`, 'content-type': formContentType }, body: Buffer.concat(chunks) });
      assert.equal(declared.status, 413);
      const exactly = await upload({ version: 'v8', deviceType: 'rpi4' }, patternContent(maxPackageSize));
      assert.equal(exactly.status, 201, 'exactly maxPackageSize bytes is allowed');
      await assertNothingLeft([...before, exactly.body.id]);
    });

    it('checks signatures against the organization’s active signing keys', async () => {
      const keys = `/api/orgs/${orgId}/signing-keys`;
      const mine = ed25519();
      const theirs = ed25519();
      const added = await call('POST', keys, admin(), { name: 'release', publicKey: pemOf(mine.publicKey) });
      assert.equal(added.status, 201, JSON.stringify(added.body));
      assert.match(added.body.fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
      assert.equal(added.body.revokedAt, null);
      assert.equal((await call('POST', keys, admin(), { name: 'again', publicKey: pemOf(mine.publicKey) })).status, 409);
      assert.equal((await call('POST', `/api/orgs/${outsiderOrgId}/signing-keys`, outsider, { name: 'bravo', publicKey: pemOf(theirs.publicKey) })).status, 201);
      assert.equal((await call('GET', keys, viewer)).body.items.length, 1);

      const content = patternBytes(3, 50_000);
      const signed = await upload({ version: 'v9', deviceType: 'signed', signature: signatureOf(content, mine.privateKey) }, content);
      assert.equal(signed.status, 201, JSON.stringify(signed.body));
      assert.equal(signed.body.signingKeyId, added.body.id);
      assert.equal(signed.body.signature, signatureOf(content, mine.privateKey));

      const before = await readyIds();
      const wrongContent = await upload({ version: 'v9', deviceType: 'signed', signature: signatureOf(Buffer.from('other'), mine.privateKey) }, content);
      assert.equal(wrongContent.status, 400);
      assert.match(wrongContent.body.error.message, /signature does not verify/);
      const otherOrgsKey = await upload({ version: 'v9', deviceType: 'signed', signature: signatureOf(content, theirs.privateKey) }, content);
      assert.equal(otherOrgsKey.status, 400);

      assert.equal((await call('DELETE', `${keys}/${added.body.id}`, admin())).status, 204);
      assert.equal((await call('DELETE', `${keys}/${added.body.id}`, admin())).status, 204, 'revoking twice changes nothing');
      assert.ok((await call('GET', keys, admin())).body.items[0].revokedAt);
      const revoked = await upload({ version: 'v9', deviceType: 'signed', signature: signatureOf(content, mine.privateKey) }, content);
      assert.equal(revoked.status, 400);
      assert.match(revoked.body.error.message, /no active signing key/);
      await assertNothingLeft(before);
      assert.equal((await call('GET', `${packagesPath()}/${signed.body.id}`, admin())).body.signingKeyId, added.body.id, 'a revoked key leaves what it verified');

      for (const publicKey of [pemOf(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey), mine.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'not a key']) {
        assert.equal((await call('POST', keys, admin(), { name: 'bad', publicKey })).status, 400);
      }
      assert.equal((await call('POST', keys, viewer, { name: 'v', publicKey: pemOf(ed25519().publicKey) })).status, 403);
      assert.equal((await call('POST', keys, outsider, { name: 'o', publicKey: pemOf(ed25519().publicKey) })).status, 404);
      assert.equal((await call('GET', keys, outsider)).status, 404);
      assert.equal((await call('DELETE', `${keys}/${added.body.id}`, operator)).status, 403);
      assert.equal((await call('DELETE', `${keys}/psk_unknown`, admin())).status, 404);
    });

    it('refuses bad fields and metadata over the limits with 400, storing nothing', async () => {
      const before = await readyIds();
      const manyKeys = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, 'v']));
      const cases: Array<[string, Record<string, string>]> = [
        ['no version', { deviceType: 'rpi4' }],
        ['no device type', { version: 'v1' }],
        ['empty version', { version: '', deviceType: 'rpi4' }],
        ['version too long', { version: 'v'.repeat(201), deviceType: 'rpi4' }],
        ['control character', { version: 'v1\u0001', deviceType: 'rpi4' }],
        ['101 metadata keys', { version: 'v1', deviceType: 'rpi4', metadata: JSON.stringify(manyKeys) }],
        ['key too long', { version: 'v1', deviceType: 'rpi4', ['k'.repeat(201)]: 'v' }],
        ['value too long', { version: 'v1', deviceType: 'rpi4', 'requires:version': 'x'.repeat(1001) }],
        ['metadata not JSON', { version: 'v1', deviceType: 'rpi4', metadata: '{nope' }],
        ['metadata an array', { version: 'v1', deviceType: 'rpi4', metadata: '["a"]' }],
        ['metadata with a number', { version: 'v1', deviceType: 'rpi4', metadata: '{"a":1}' }],
        ['a key twice', { version: 'v1', deviceType: 'rpi4', metadata: '{"a":"1"}', a: '2' }],
      ];
      for (const [what, fields] of cases) {
        const reply = await upload(fields, Buffer.from('content'));
        assert.equal(reply.status, 400, `${what}: ${JSON.stringify(reply.body)}`);
        assert.ok(['bad_request', 'validation_failed'].includes(reply.body.error.code), what);
      }
      const atLimits = { version: 'v'.repeat(200), deviceType: 'rpi4', metadata: JSON.stringify(Object.fromEntries(Array.from({ length: 99 }, (_, i) => [`k${i}`, 'x'.repeat(1000)]))), ['k'.repeat(200)]: 'v' };
      const accepted = await upload(atLimits, Buffer.from('content'));
      assert.equal(accepted.status, 201, JSON.stringify(accepted.body));
      assert.equal(Object.keys(accepted.body.metadata).length, 100);
      await assertNothingLeft([...before, accepted.body.id]);
    });

    it('refuses to delete a package a group, an unfinished deployment or a device update uses (409)', async () => {
      const pkg = (await upload({ version: 'v10', deviceType: 'rpi4' }, Buffer.from('in use'))).body;
      const db = server.services.store.db;
      const path = `${packagesPath()}/${pkg.id}`;
      const group = await call('POST', `/api/orgs/${orgId}/groups`, admin(), { name: 'canary' });
      await db.insertInto('group_packages').values({ group_id: group.body.id, package_id: pkg.id }).execute();
      const byGroup = await call('DELETE', path, admin());
      assert.equal(byGroup.status, 409);
      assert.deepEqual(byGroup.body.error.details, { groupIds: [group.body.id] });
      await db.deleteFrom('group_packages').execute();

      const now = nowIso();
      const deploymentId = newId('dep');
      await db
        .insertInto('deployments')
        .values({ id: deploymentId, org_id: orgId, group_id: group.body.id, name: 'roll', target_version: 'v10', status: 'running', phases: '[]', maintenance_window: null, failure_threshold: 20, current_phase: 0, paused_reason: null, start_at: null, created_by: 'test', created_at: now, updated_at: now, finished_at: null } as never)
        .execute();
      await db.insertInto('deployment_devices').values({ deployment_id: deploymentId, device_id: deviceId, phase: 0, status: 'pending', package_id: pkg.id, progress: null, reason: null, updated_at: now, finished_at: null }).execute();
      const byDeployment = await call('DELETE', path, admin());
      assert.equal(byDeployment.status, 409);
      assert.deepEqual(byDeployment.body.error.details, { deploymentIds: [deploymentId] });
      await db.updateTable('deployments').set({ status: 'completed' }).execute();

      await db.insertInto('device_updates').values({ device_id: deviceId, org_id: orgId, package_id: pkg.id, target_version: 'v10', deployment_id: null, status: 'downloading', progress: 10, reason: null, created_at: now, updated_at: now }).execute();
      const byUpdate = await call('DELETE', path, admin());
      assert.equal(byUpdate.status, 409);
      assert.deepEqual(byUpdate.body.error.details, { deviceIds: [deviceId] });
      await db.updateTable('device_updates').set({ status: 'success' }).execute();

      assert.equal((await call('DELETE', path, viewer)).status, 403);
      assert.equal((await call('DELETE', path, outsider)).status, 404);
      assert.equal((await call('DELETE', path, admin())).status, 204);
      assert.equal((await call('GET', path, admin())).status, 404);
      assert.equal((await download(`${path}/content`, admin())).status, 404);
      assert.equal((await call('DELETE', path, admin())).status, 404);
      assert.equal((await filesUnder(blobRoot())).includes(`packages/${orgId}/${pkg.id}`), false);
      const audit = await call('GET', `/api/orgs/${orgId}/audit?targetId=${pkg.id}`, admin());
      assert.deepEqual(audit.body.items.map((e: { action: string }) => e.action), ['package.upload', 'package.delete']);
    });

    it('lets each organization and its devices see only their own packages, and admins alone change them', async () => {
      const content = Buffer.from('private firmware');
      const pkg = (await upload({ version: 'v11', deviceType: 'rpi4' }, content)).body;
      const path = `${packagesPath()}/${pkg.id}`;
      for (const [what, token] of [['another organization', outsider], ['a device of another organization', outsiderDeviceKey]] as const) {
        assert.equal((await call('GET', packagesPath(), token)).status, 404, what);
        assert.equal((await call('GET', path, token)).status, 404, what);
        assert.equal((await download(`${path}/content`, token)).status, 404, what);
        assert.equal((await download(`${path}/content`, token, {}, 'HEAD')).status, 404, what);
        assert.equal((await call('POST', `${path}/link`, token)).status, 404, what);
      }
      assert.equal((await upload({ version: 'x', deviceType: 'y' }, content, outsider)).status, 404);
      // A device reads and downloads its own organization's packages, and changes nothing.
      assert.equal((await call('GET', path, deviceKey)).body.id, pkg.id);
      assert.ok((await bytesOf(await download(`${path}/content`, deviceKey))).equals(content));
      // Managing packages is for members: to a device, as to outsiders, there is nothing to manage (404).
      assert.equal((await upload({ version: 'x', deviceType: 'y' }, content, deviceKey)).status, 404);
      assert.equal((await call('DELETE', path, deviceKey)).status, 404);
      for (const [what, token] of [['viewer', viewer], ['operator', operator]] as const) {
        assert.equal((await call('GET', path, token)).status, 200, what);
        assert.equal((await upload({ version: 'x', deviceType: 'y' }, content, token)).status, 403, what);
      }
      const key = await call('POST', `/api/orgs/${orgId}/api-keys`, admin(), { name: 'ci upload' });
      assert.equal((await upload({ version: 'v12', deviceType: 'rpi4' }, content, key.body.key)).status, 201);
      await call('DELETE', `/api/orgs/${orgId}/api-keys/${key.body.id}`, admin());
      assert.equal((await upload({ version: 'v13', deviceType: 'rpi4' }, content, key.body.key)).status, 401);
      assert.equal((await call('GET', path, key.body.key)).status, 401);
      assert.equal((await download(`${path}/content`)).status, 401);
      assert.equal((await upload({ version: 'v13', deviceType: 'rpi4' }, content, 'not-a-token')).status, 401);
    });
  });
}
