import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { backends } from '../../helpers/backends.ts';
import { memberWithRole, startTestServer, type TestServer } from '../../helpers/server.ts';
import { apiKey, otherOrganization, rdfmClient, rfc822Shape } from './management-helpers.ts';
import { RdfmDevice } from './simulator.ts';

/** RDFM's registration flow (rdfm.md §2) over fleetd's waiting room, as rdfm-mgmt drives it. */
for (const backend of await backends()) {
  describe(`RDFM management: registrations [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let admin: ReturnType<typeof rdfmClient>;

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off' });
      admin = rdfmClient(server, server.admin.token);
    });
    after(async () => {
      await server?.close();
    });

    const pendingOf = async (mac: string) => (await admin('GET', '/api/v1/auth/pending')).body.find((p: any) => p.mac_address === mac);

    it('a device waits (401), shows as pending, is registered, then authenticates and is listed with its integer id', async () => {
      const device = new RdfmDevice(server.url, 'aa:00:00:00:00:01', { 'rdfm.software.version': 'v1', 'rdfm.hardware.devtype': 'board-a' });
      assert.deepEqual(await device.auth(), { status: 401, body: { error: 'device unauthorized' } });

      const pending = await admin('GET', '/api/v1/auth/pending');
      assert.equal(pending.status, 200);
      assert.ok(Array.isArray(pending.body));
      const entry = pending.body.find((p: any) => p.mac_address === device.mac);
      assert.deepEqual(Object.keys(entry).sort(), ['last_appeared', 'mac_address', 'metadata', 'public_key']);
      assert.equal(entry.public_key.trim(), device.publicPem.trim());
      assert.match(entry.last_appeared, rfc822Shape);
      assert.deepEqual(entry.metadata, { 'rdfm.software.version': 'v1', 'rdfm.hardware.devtype': 'board-a', 'rdfm.hardware.macaddr': device.mac });

      // rdfm-mgmt sends back the key as it listed it.
      const registered = await admin('POST', '/api/v1/auth/register', { mac_address: entry.mac_address, public_key: entry.public_key });
      assert.deepEqual(registered, { status: 200, body: {} });
      assert.equal(await pendingOf(device.mac), undefined);

      const auth = await device.auth();
      assert.equal(auth.status, 200);
      assert.equal(typeof auth.body.token, 'string');

      const devices = await admin('GET', '/api/v2/devices');
      assert.equal(devices.status, 200);
      const shown = devices.body.find((d: any) => d.mac_address === device.mac);
      assert.ok(Number.isSafeInteger(shown.id) && shown.id > 0);
      assert.equal(shown.name, device.mac);
      assert.equal(shown.public_key.trim(), device.publicPem.trim());
      assert.equal(shown.metadata['rdfm.software.version'], 'v1');
      assert.equal((await admin('GET', `/api/v2/devices/${shown.id}`)).body.mac_address, device.mac);
    });

    it('registration keeps the tags the device asks for that fleetd allows', async () => {
      const device = new RdfmDevice(server.url, 'aa:00:00:00:00:02');
      const body = device.authBody({ metadata: { ...device.metadata, 'rdfm.hardware.macaddr': device.mac, 'rdfm.software.tags': ['lab', 'bad tag', 'rack-1'] } });
      assert.equal((await device.postAuth(body, device.signature(body))).status, 401);
      assert.deepEqual(await admin('POST', '/api/v1/auth/register', { mac_address: device.mac, public_key: device.publicPem }), { status: 200, body: {} });
      const shown = (await admin('GET', '/api/v2/devices')).body.find((d: any) => d.mac_address === device.mac);
      assert.deepEqual((await admin('GET', `/api/v2/devices/${shown.id}/tags`)).body, ['lab', 'rack-1']);
    });

    it('deleting a pending registration drops it; the device asks again when it next authenticates', async () => {
      const device = new RdfmDevice(server.url, 'aa:00:00:00:00:03');
      assert.equal((await device.auth()).status, 401);
      assert.ok(await pendingOf(device.mac));
      assert.deepEqual(await admin('DELETE', '/api/v1/auth/pending', { mac_address: device.mac, public_key: device.publicPem }), { status: 200, body: {} });
      assert.equal(await pendingOf(device.mac), undefined);
      assert.equal((await admin('DELETE', '/api/v1/auth/pending', { mac_address: device.mac, public_key: device.publicPem })).status, 404);
      assert.equal((await device.auth()).status, 401);
      assert.ok(await pendingOf(device.mac), 'waits again');
    });

    it('404 for a registration that does not exist: unknown MAC, another key, a key that is no PEM, a registered device', async () => {
      const device = new RdfmDevice(server.url, 'aa:00:00:00:00:04');
      assert.equal((await device.auth()).status, 401);
      const stranger = new RdfmDevice(server.url, 'aa:00:00:00:00:05');
      for (const body of [
        { mac_address: 'ff:ff:ff:ff:ff:ff', public_key: device.publicPem },
        { mac_address: device.mac, public_key: stranger.publicPem },
        { mac_address: device.mac, public_key: 'not a key' },
        { mac_address: 'aa:00:00:00:00:01', public_key: device.publicPem },
      ]) {
        for (const [method, path] of [['POST', '/api/v1/auth/register'], ['DELETE', '/api/v1/auth/pending']] as const) {
          const reply = await admin(method, path, body);
          assert.equal(reply.status, 404, `${method} ${path} ${JSON.stringify(body).slice(0, 60)}`);
          assert.equal(typeof reply.body.error, 'string');
        }
      }
      assert.ok(await pendingOf(device.mac), 'nothing changed');
    });

    it('key rotation (a registered MAC with a new key) is refused: nothing waits, register answers 404', async () => {
      const rotated = new RdfmDevice(server.url, 'aa:00:00:00:00:01');
      assert.equal((await rotated.auth()).status, 401);
      assert.equal(await pendingOf(rotated.mac), undefined);
      assert.equal((await admin('POST', '/api/v1/auth/register', { mac_address: rotated.mac, public_key: rotated.publicPem })).status, 404);
    });

    it('malformed bodies are 400 with {"error"} and change nothing', async () => {
      const device = new RdfmDevice(server.url, 'aa:00:00:00:00:06');
      assert.equal((await device.auth()).status, 401);
      for (const [method, path] of [['POST', '/api/v1/auth/register'], ['DELETE', '/api/v1/auth/pending']] as const) {
        for (const body of ['{"mac_address":', '[]', '"text"', JSON.stringify({ mac_address: device.mac }), JSON.stringify({ public_key: device.publicPem }), JSON.stringify({ mac_address: 5, public_key: device.publicPem }), JSON.stringify({ mac_address: 'x'.repeat(500), public_key: device.publicPem })]) {
          const reply = await admin(method, path, body);
          assert.equal(reply.status, 400, `${method} ${body.slice(0, 40)}: ${JSON.stringify(reply.body)}`);
          assert.equal(typeof reply.body.error, 'string');
        }
      }
      assert.equal((await admin('POST', '/api/v1/auth/register')).status, 400, 'no body');
      assert.ok(await pendingOf(device.mac));
    });

    it('without a token: 401 {"error"}', async () => {
      const anonymous = rdfmClient(server, undefined);
      for (const [method, path, body] of [
        ['GET', '/api/v1/auth/pending', undefined],
        ['POST', '/api/v1/auth/register', { mac_address: 'aa:00:00:00:00:06', public_key: 'x' }],
        ['DELETE', '/api/v1/auth/pending', { mac_address: 'aa:00:00:00:00:06', public_key: 'x' }],
      ] as const) {
        const reply = await anonymous(method, path, body);
        assert.equal(reply.status, 401, `${method} ${path}`);
        assert.equal(typeof reply.body.error, 'string');
      }
      assert.equal((await rdfmClient(server, 'not-a-token')('GET', '/api/v1/auth/pending')).status, 401);
    });

    it('viewers and operators may neither see nor decide registrations (403)', async () => {
      const device = new RdfmDevice(server.url, 'aa:00:00:00:00:07');
      assert.equal((await device.auth()).status, 401);
      for (const role of ['viewer', 'operator'] as const) {
        const member = rdfmClient(server, (await memberWithRole(server, server.admin.orgId, `${role}@example.com`, role)).token);
        const body = { mac_address: device.mac, public_key: device.publicPem };
        for (const [method, path] of [['GET', '/api/v1/auth/pending'], ['POST', '/api/v1/auth/register'], ['DELETE', '/api/v1/auth/pending']] as const) {
          const reply = await member(method, path, method === 'GET' ? undefined : body);
          assert.equal(reply.status, 403, `${role} ${method} ${path}`);
          assert.equal(typeof reply.body.error, 'string');
        }
      }
      assert.ok(await pendingOf(device.mac), 'still waiting');
    });

    it("another organization's API key sees no registration waiting without organization, and cannot decide one (404)", async () => {
      const device = new RdfmDevice(server.url, 'aa:00:00:00:00:08');
      assert.equal((await device.auth()).status, 401);
      const other = rdfmClient(server, (await otherOrganization(server, 'other-reg')).key);
      assert.deepEqual(await other('GET', '/api/v1/auth/pending'), { status: 200, body: [] });
      const body = { mac_address: device.mac, public_key: device.publicPem };
      assert.equal((await other('POST', '/api/v1/auth/register', body)).status, 404);
      assert.equal((await other('DELETE', '/api/v1/auth/pending', body)).status, 404);
      assert.ok(await pendingOf(device.mac), 'still waiting');
    });
  });

  describe(`RDFM management: registrations with rdfmOrg [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off', rdfmOrg: 'default' });
    });
    after(async () => {
      await server?.close();
    });

    it("devices wait in rdfmOrg, where an admin's API key registers them; another organization's key sees nothing", async () => {
      const device = new RdfmDevice(server.url, 'bb:00:00:00:00:01');
      assert.equal((await device.auth()).status, 401);
      const orgAdmin = await memberWithRole(server, server.admin.orgId, 'org-admin@example.com', 'admin');
      const client = rdfmClient(server, await apiKey(server, 'default', orgAdmin.token));
      const pending = await client('GET', '/api/v1/auth/pending');
      assert.deepEqual(pending.body.map((p: any) => p.mac_address), [device.mac]);

      const other = await otherOrganization(server, 'other-org');
      // rdfmOrg names the organization: another organization's key has no role there.
      assert.equal((await rdfmClient(server, other.key)('GET', '/api/v1/auth/pending')).status, 404);

      assert.deepEqual(await client('POST', '/api/v1/auth/register', { mac_address: device.mac, public_key: device.publicPem }), { status: 200, body: {} });
      assert.equal((await device.auth()).status, 200);
      const found = await server.services.devices.findByExternalId(device.mac);
      assert.equal(found?.orgId, server.admin.orgId);
    });
  });
}
