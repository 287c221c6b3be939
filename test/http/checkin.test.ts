import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { backends } from '../helpers/backends.ts';
import { request, startTestServer, type TestServer } from '../helpers/server.ts';

/** Signed check-in over HTTP: Ed25519 and RSA devices, and everything a forger or a broken device may send. */

interface Signer {
  kind: 'ed25519' | 'rsa';
  pem: string;
  fingerprint: string;
  sign(body: string): string;
}

function signer(kind: Signer['kind'], options: { modulusLength?: number } = {}): Signer {
  const { publicKey, privateKey } = kind === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('rsa', { modulusLength: options.modulusLength ?? 2048 });
  return {
    kind,
    pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    fingerprint: `SHA256:${createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('base64').replace(/=+$/, '')}`,
    sign: (body) => sign(kind === 'ed25519' ? null : 'sha256', Buffer.from(body), privateKey as KeyObject).toString('base64'),
  };
}

const tables = ['devices', 'pending_devices', 'audit_events', 'hub_events'] as const;

for (const backend of await backends()) {
  describe(`signed check-in [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    const admin = () => server.admin.token;

    /** Checks in with `body` (an object is serialized here, exactly once) signed by `key` unless a signature is given. */
    const checkin = (key: Signer, body: unknown, options: { signature?: string | null; query?: string } = {}) => {
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      const signature = options.signature === undefined ? key.sign(text) : options.signature;
      return request(server.url, 'POST', `/api/devices/checkin${options.query ?? '?org=default'}`, { body: text, headers: signature === null ? {} : { 'x-fleetd-signature': signature } });
    };
    const fresh = (key: Signer, deviceId: string, extra: Record<string, unknown> = {}) => ({ deviceId, publicKey: key.pem, timestamp: Date.now(), ...extra });
    const counts = async () => {
      const db = server.services.store.db;
      return Promise.all(tables.map(async (table) => Number((await db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n)));
    };
    const pendingOf = async (externalId: string) => {
      const list = await request(server.url, 'GET', `/api/orgs/${org}/pending-devices`, { token: admin() });
      return list.body.items.find((p: { externalId: string }) => p.externalId === externalId);
    };
    /** A device that waited and was accepted: its fleetd id. */
    const admitted = async (key: Signer, externalId: string): Promise<string> => {
      assert.equal((await checkin(key, fresh(key, externalId))).status, 202);
      const accepted = await request(server.url, 'POST', `/api/orgs/${org}/pending-devices/${(await pendingOf(externalId)).id}/accept`, { token: admin(), body: {} });
      assert.equal(accepted.status, 201);
      return accepted.body.id;
    };

    before(async () => {
      server = await startTestServer(backend);
      org = server.admin.orgId;
    });
    after(async () => {
      await server?.close();
    });

    for (const kind of ['ed25519', 'rsa'] as const) {
      it(`${kind}: an unknown device waits with its key; once accepted it checks in for a token that acts as itself only`, async () => {
        const key = signer(kind);
        const externalId = `${kind}-sensor`;
        const first = await checkin(key, fresh(key, externalId, { metadata: { software: 'v1.2', hw: 'rpi4' } }));
        assert.equal(first.status, 202, JSON.stringify(first.body));
        assert.deepEqual(first.body, { status: 'pending' });
        const waiting = await pendingOf(externalId);
        assert.deepEqual([waiting.endpoint, waiting.keyFingerprint, waiting.info.metadata], ['checkin', key.fingerprint, { software: 'v1.2', hw: 'rpi4' }]);
        assert.equal((await checkin(key, fresh(key, externalId, { metadata: { software: 'v1.3' } }))).status, 202, 'still waiting');
        assert.deepEqual((await pendingOf(externalId)).info.metadata, { software: 'v1.3' }, 'what it says of itself is replaced');

        const accepted = await request(server.url, 'POST', `/api/orgs/${org}/pending-devices/${waiting.id}/accept`, { token: admin(), body: { name: `${kind} sensor` } });
        assert.equal(accepted.status, 201);
        assert.deepEqual(accepted.body.metadata, { software: 'v1.3' });
        const deviceId = accepted.body.id as string;

        const body = JSON.stringify(fresh(key, externalId));
        const checkedIn = await checkin(key, body);
        assert.equal(checkedIn.status, 200, JSON.stringify(checkedIn.body));
        assert.deepEqual([checkedIn.body.deviceId, checkedIn.body.orgId, checkedIn.body.expiresIn], [deviceId, org, 900]);
        const token = checkedIn.body.accessToken as string;

        const me = await request(server.url, 'GET', '/api/auth/me', { token });
        assert.deepEqual([me.body.kind, me.body.deviceId, me.body.user], ['device', deviceId, null]);
        assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/devices/${deviceId}`, { token })).status, 200);
        const reported = await request(server.url, 'PATCH', `/api/orgs/${org}/devices/${deviceId}/state/reported`, { token, body: { uptime: 5 } });
        assert.equal(reported.status, 200);
        const other = await request(server.url, 'POST', `/api/orgs/${org}/devices`, { token: admin(), body: { name: `not the ${kind} sensor` } });
        assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/devices/${other.body.id}`, { token })).status, 404);
        assert.equal((await request(server.url, 'PATCH', `/api/orgs/${org}/devices/${other.body.id}/state/reported`, { token, body: { uptime: 1 } })).status, 404);
        assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/devices`, { token })).status, 404);
        assert.equal((await request(server.url, 'GET', `/api/orgs/${org}/pending-devices`, { token })).status, 404);

        const replayed = await checkin(key, body);
        assert.equal(replayed.status, 401);
        assert.match(replayed.body.error.message, /replay/);
        const older = await checkin(key, fresh(key, externalId, { timestamp: JSON.parse(body).timestamp - 1 }));
        assert.equal(older.status, 401, 'an older timestamp is a replay too');
      });
    }

    it('refuses a wrong, missing or mangled signature with 401, and changes nothing', async () => {
      const key = signer('ed25519');
      const thief = signer('ed25519');
      const rsa = signer('rsa');
      await admitted(key, 'signed-device');
      const before = await counts();
      const body = JSON.stringify(fresh(key, 'signed-device'));
      const cases: Array<[string, Signer, string, string | null]> = [
        ['signed with another key', key, body, thief.sign(body)],
        ['signature of another body', key, body, key.sign(body.replace('signed-device', 'signed-devicf'))],
        ['RSA signature for an Ed25519 key', key, body, rsa.sign(body)],
        ['no signature', key, body, null],
        ['empty signature', key, body, ''],
        ['not base64', key, body, '%%%not base64%%%'],
        ['body changed after signing', key, body.replace('}', ',"metadata":{}}'), key.sign(body)],
      ];
      for (const [what, signerKey, text, signature] of cases) {
        const reply = await checkin(signerKey, text, { signature });
        assert.equal(reply.status, 401, `${what}: ${reply.status} ${JSON.stringify(reply.body)}`);
        assert.equal(reply.body.error.code, 'unauthenticated', what);
      }
      assert.deepEqual(await counts(), before);
      assert.equal((await checkin(key, body)).status, 200, 'the genuine body still works');
    });

    it('refuses a timestamp outside the window with 401 saying the window', async () => {
      const key = signer('rsa');
      await admitted(key, 'drifting-device');
      for (const skew of [-301_000, 301_000]) {
        const reply = await checkin(key, fresh(key, 'drifting-device', { timestamp: Date.now() + skew }));
        assert.equal(reply.status, 401);
        assert.match(reply.body.error.message, /300 s/);
      }
      const unknown = signer('ed25519');
      const before = await counts();
      assert.equal((await checkin(unknown, fresh(unknown, 'stale-stranger', { timestamp: Date.now() - 3_600_000 }))).status, 401);
      assert.deepEqual(await counts(), before, 'a stale check-in does not even reach the waiting room');
    });

    it('refuses (403) another key for a known or waiting device id, and a denied device', async () => {
      const registered = await request(server.url, 'POST', `/api/orgs/${org}/devices`, { token: admin(), body: { name: 'Plain', externalId: 'keyless-device' } });
      assert.equal(registered.status, 201);
      const intruder = signer('ed25519');
      assert.equal((await checkin(intruder, fresh(intruder, 'keyless-device'))).status, 403);

      const owner = signer('ed25519');
      await admitted(owner, 'owned-device');
      const forged = await checkin(intruder, fresh(intruder, 'owned-device'));
      assert.equal(forged.status, 403);

      const early = signer('rsa');
      assert.equal((await checkin(early, fresh(early, 'contested-device'))).status, 202);
      assert.equal((await checkin(intruder, fresh(intruder, 'contested-device'))).status, 403);
      const waiting = await pendingOf('contested-device');
      assert.equal(waiting.keyFingerprint, early.fingerprint, 'the waiting key is not replaced');

      assert.equal((await request(server.url, 'POST', `/api/orgs/${org}/pending-devices/${waiting.id}/deny`, { token: admin() })).status, 200);
      const refused = await checkin(early, fresh(early, 'contested-device'));
      assert.equal(refused.status, 403);
      assert.match(refused.body.error.message, /denied/);
    });

    it("a deleted device's token stops working at once", async () => {
      const key = signer('ed25519');
      const deviceId = await admitted(key, 'doomed-device');
      const token = (await checkin(key, fresh(key, 'doomed-device'))).body.accessToken as string;
      assert.equal((await request(server.url, 'GET', '/api/auth/me', { token })).status, 200);
      assert.equal((await request(server.url, 'DELETE', `/api/orgs/${org}/devices/${deviceId}`, { token: admin() })).status, 204);
      assert.equal((await request(server.url, 'GET', '/api/auth/me', { token })).status, 401);
    });

    it('refuses hostile bodies with 400 (413 when too large) and stores nothing', async () => {
      const key = signer('ed25519');
      const before = await counts();
      const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
      const weak = signer('rsa', { modulusLength: 1024 });
      const privatePem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const truncated = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n';
      const cases: Array<[string, unknown]> = [
        ['not JSON', '{"deviceId": '],
        ['an array', '[]'],
        ['a number', '42'],
        ['nothing but braces', '{}'],
        ['timestamp as text', { deviceId: 'hostile', publicKey: key.pem, timestamp: String(Date.now()) }],
        ['deviceId as a number', { deviceId: 5, publicKey: key.pem, timestamp: Date.now() }],
        ['deviceId with a space', fresh(key, 'has space')],
        ['deviceId too long', fresh(key, 'x'.repeat(129))],
        ['an unknown field', fresh(key, 'hostile', { admin: true })],
        ['metadata as an array', fresh(key, 'hostile', { metadata: [1, 2] })],
        ['a negative timestamp', fresh(key, 'hostile', { timestamp: -1 })],
        ['a fractional timestamp', fresh(key, 'hostile', { timestamp: 1.5 })],
        ['a prototype-polluting body', `{"deviceId":"hostile","publicKey":${JSON.stringify(key.pem)},"timestamp":${Date.now()},"__proto__":{"admin":true}}`],
        ['not a PEM', fresh(key, 'hostile', { publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA' })],
        ['a truncated PEM', fresh(key, 'hostile', { publicKey: truncated })],
        ['a private key', fresh(key, 'hostile', { publicKey: privatePem })],
        ['an EC key', fresh(key, 'hostile', { publicKey: ec })],
        ['RSA below 2048 bits', fresh(weak, 'hostile')],
        ['a huge key', fresh(key, 'hostile', { publicKey: `-----BEGIN PUBLIC KEY-----\n${'A'.repeat(8000)}\n-----END PUBLIC KEY-----\n` })],
      ];
      for (const [what, body] of cases) {
        const reply = await checkin(key, body);
        assert.equal(reply.status, 400, `${what}: ${reply.status} ${JSON.stringify(reply.body)}`);
        assert.ok(reply.body.error.code === 'bad_request' || reply.body.error.code === 'validation_failed', what);
      }
      const text = await request(server.url, 'POST', '/api/devices/checkin', { body: 'deviceId=x', headers: { 'content-type': 'text/plain', 'x-fleetd-signature': 'AAAA' } });
      assert.equal(text.status, 415);
      const huge = JSON.stringify(fresh(key, 'hostile', { metadata: { blob: 'x'.repeat(1_100_000) } }));
      assert.equal((await checkin(key, huge)).status, 413);
      assert.deepEqual(await counts(), before);
    });
  });

  describe(`signed check-in with open admission [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;

    before(async () => {
      server = await startTestServer(backend, { admissionEndpoints: '{checkin: open}' });
    });
    after(async () => {
      await server?.close();
    });

    it('admits a new device at once into the organization its URL names, and only once per signed body', async () => {
      const key = signer('rsa');
      const body = JSON.stringify({ deviceId: 'bench-rig', publicKey: key.pem, timestamp: Date.now(), metadata: { bench: 3 } });
      const nowhere = await request(server.url, 'POST', '/api/devices/checkin', { body, headers: { 'x-fleetd-signature': key.sign(body) } });
      assert.equal(nowhere.status, 403);
      assert.match(nowhere.body.error.message, /\?org=/);
      const admitted = await request(server.url, 'POST', '/api/devices/checkin?org=default', { body, headers: { 'x-fleetd-signature': key.sign(body) } });
      assert.equal(admitted.status, 200, JSON.stringify(admitted.body));
      assert.equal(admitted.body.orgId, server.admin.orgId);
      const device = await request(server.url, 'GET', `/api/orgs/default/devices/${admitted.body.deviceId}`, { token: admitted.body.accessToken });
      assert.deepEqual([device.body.externalId, device.body.metadata], ['bench-rig', { bench: 3 }]);
      const replayed = await request(server.url, 'POST', '/api/devices/checkin?org=default', { body, headers: { 'x-fleetd-signature': key.sign(body) } });
      assert.equal(replayed.status, 401);
    });
  });
}
