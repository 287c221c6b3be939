import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { Package } from '../../src/services/packages/package.ts';
import { ShellySimulator, type ReceivedFrame } from '../adapters/shelly/simulator.ts';
import { backends } from '../helpers/backends.ts';
import { readUntil } from '../helpers/waiting.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { deviceType, otaFixtures, type OtaFixtures } from './updates-fixtures.ts';

/**
 * Update policies, package sets and the update check over HTTP, as a device and its operators see
 * them: RDFM's resolver cases through the API, progress reports, notices to online devices, access
 * and refused input.
 */

const xdelta = 'rdfm.software.supports_xdelta';
const isNotice = (frame: ReceivedFrame) => frame.method === 'Fleetd.UpdateAvailable';

for (const backend of await backends()) {
  describe(`update policies and checks [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let f: OtaFixtures;
    let fullV1: Package;
    let fullV2: Package;
    let plainDeltaV3: Package;
    let deltaV3: Package;
    let fullV3: Package;

    before(async () => {
      server = await startTestServer(backend, { rolloutInterval: '3600', messageLog: 'off' });
      f = await otaFixtures(server);
      fullV1 = await f.pkg('v1');
      fullV2 = await f.pkg('v2');
      plainDeltaV3 = await f.pkg('v3', { 'requires:rdfm.software.version': 'v2' });
      // The delta is older than the full v3: on a tie the resolver takes it.
      deltaV3 = await f.pkg('v3', { 'requires:rdfm.software.version': 'v2', [`requires:${xdelta}`]: 'true' });
      fullV3 = await f.pkg('v3');
    });
    after(async () => {
      await server?.close();
    });

    it("resolves RDFM's cases through the API: paths, delta fallback, downgrade, and nothing to do", async () => {
      const device = await f.device('resolver device');
      const group = await f.group('resolver group', [device.id]);
      const offered = async (facts: { version: string; deviceType?: string; metadata?: Record<string, string> }) => {
        const reply = await f.check(device.key, facts);
        if (reply.status === 204) return null;
        assert.equal(reply.status, 200, JSON.stringify(reply.body));
        return reply.body.packageId as string;
      };
      const flagged = { [xdelta]: 'true' };

      assert.equal(await offered({ version: 'v1' }), null, 'a new group updates nothing (no_update)');
      await f.setPolicy(group, { policy: 'exact_match', targetVersion: 'v3' });
      // rdfm.md's example: a full v2 and a delta v3 that needs v2.
      await f.setPackages(group, [fullV2.id, plainDeltaV3.id]);
      assert.equal(await offered({ version: 'v1' }), fullV2.id, 'on v1: the full v2 first');
      assert.equal(await offered({ version: 'v2' }), plainDeltaV3.id, 'on v2: the delta');
      // A delta that also needs the device's support flag: beyond the first hop RDFM asks the flag of the
      // package installed before (the full v2 has none), so only a device on v2 with the flag gets there.
      await f.setPackages(group, [fullV2.id, deltaV3.id]);
      assert.equal(await offered({ version: 'v1', metadata: flagged }), null);
      assert.equal(await offered({ version: 'v2', metadata: flagged }), deltaV3.id);
      assert.equal(await offered({ version: 'v2' }), null, 'no support for deltas and no full v3: no path');
      // With the full v3 beside the delta.
      await f.setPackages(group, [deltaV3.id, fullV3.id]);
      assert.equal(await offered({ version: 'v2', metadata: flagged }), deltaV3.id);
      assert.equal(await offered({ version: 'v2' }), fullV3.id, 'delta fallback: no support flag');
      assert.equal(await offered({ version: 'v1', metadata: flagged }), fullV3.id, 'delta fallback: another base version');
      assert.equal(await offered({ version: 'v2', metadata: { 'rdfm.software.version': 'v1', ...flagged } }), deltaV3.id, 'the version given wins over a metadata key');
      assert.equal(await offered({ version: 'v3' }), null, 'zero hops: it runs the target');
      assert.equal(await offered({ version: 'v2', deviceType: 'board-b', metadata: flagged }), null, 'packages of another device type');
      // An empty package set: every package of the device type.
      await f.setPackages(group, []);
      assert.equal(await offered({ version: 'v1' }), fullV3.id);
      // Downgrade.
      await f.setPolicy(group, { policy: 'exact_match', targetVersion: 'v1' });
      assert.equal(await offered({ version: 'v3' }), fullV1.id);
      await f.setPolicy(group, { policy: 'exact_match', targetVersion: 'v9' });
      assert.equal(await offered({ version: 'v1' }), null, 'a target no package has');
      await f.setPolicy(group, { policy: 'no_update' });
      assert.equal(await offered({ version: 'v1' }), null);

      // A device in two groups follows the one with the highest priority.
      const urgent = await f.group('resolver urgent', [device.id], { priority: 10 });
      await f.setPolicy(urgent, { policy: 'exact_match', targetVersion: 'v2' });
      assert.equal(await offered({ version: 'v1' }), fullV2.id);
    });

    it('hands out a link to the package, records the offer, takes progress reports and the new version', async () => {
      const device = await f.device('reporting device');
      const group = await f.group('reporting group', [device.id]);
      await f.setPolicy(group, { policy: 'exact_match', targetVersion: 'v2' });
      const status = () => f.call('GET', `/api/orgs/${f.org}/devices/${device.id}/update`, f.viewer);
      assert.equal((await status()).status, 404, 'nothing offered yet');
      assert.equal((await f.report(device.key, { status: 'downloading' })).status, 409, 'a report without an offer');

      const offer = await f.check(device.key, { version: 'v1' });
      assert.equal(offer.status, 200, JSON.stringify(offer.body));
      assert.deepEqual({ ...offer.body, url: undefined, expiresAt: undefined }, {
        packageId: fullV2.id,
        version: 'v2',
        size: fullV2.size,
        sha256: fullV2.sha256,
        signature: null,
        url: undefined,
        expiresAt: undefined,
        deploymentId: null,
      });
      assert.ok(Date.parse(offer.body.expiresAt) > Date.now());
      const download = await fetch(offer.body.url);
      assert.equal(download.status, 200);
      assert.equal(createHash('sha256').update(Buffer.from(await download.arrayBuffer())).digest('hex'), fullV2.sha256);
      assert.equal((await status()).body.status, 'pending');

      // Checking again while it works on it records nothing new.
      const events = await f.count('update_events');
      assert.equal((await f.check(device.key, { version: 'v1' })).status, 200);
      assert.equal(await f.count('update_events'), events);

      assert.equal((await f.report(device.key, { status: 'downloading', progress: 40 })).status, 204);
      assert.deepEqual(((await status()).body as { status: string; progress: number }).progress, 40);
      assert.equal((await f.report(device.key, { status: 'installing' })).status, 204);
      assert.equal((await f.report(device.key, { status: 'success', version: 'v2' })).status, 204);
      const done = (await status()).body;
      assert.equal(done.status, 'success');
      assert.equal(done.progress, 100);
      const registry = await f.call('GET', `/api/orgs/${f.org}/devices/${device.id}`, f.viewer);
      assert.equal(registry.body.firmware, 'v2', 'success with a version records it');
      assert.equal((await f.check(device.key, { version: 'v2' })).status, 204, 'up to date');

      // A failure with its reason, after a new offer.
      await f.setPolicy(group, { policy: 'exact_match', targetVersion: 'v3' });
      assert.equal((await f.check(device.key, { version: 'v2' })).body.packageId, plainDeltaV3.id, 'the older of two packages one hop away');
      assert.equal((await f.report(device.key, { status: 'failure', reason: 'no space left' })).status, 204);
      assert.deepEqual([(await status()).body.status, (await status()).body.reason], ['failure', 'no space left']);
      const history = await server.services.store.db.selectFrom('update_events').select(['kind', 'details']).where('device_id', '=', device.id).orderBy('id').execute();
      assert.deepEqual(
        history.map((event) => event.kind),
        ['device.offered', 'device.downloading', 'device.installing', 'device.success', 'device.offered', 'device.failure'],
      );
    });

    it('serves protocol adapters with plain values, as the RDFM adapter will call it', async () => {
      const device = await f.device('rdfm device');
      const group = await f.group('rdfm group', [device.id]);
      await f.setPolicy(group, { policy: 'exact_match', targetVersion: 'v3' });
      await f.setPackages(group, [deltaV3.id, fullV3.id]);
      const { updates } = server.services;
      const self = { id: device.id, orgId: f.org };
      const metadata = { 'rdfm.software.version': 'v2', 'rdfm.hardware.devtype': deviceType, 'rdfm.hardware.macaddr': '00:11:22:33:44:55', [xdelta]: 'true' };
      const offer = await updates.check(self, { version: 'v2', deviceType, metadata }, 'https://updates.example.com');
      assert.equal(offer?.packageId, deltaV3.id);
      assert.ok(offer?.url.startsWith('https://updates.example.com/api/packages/download/'), offer?.url);
      await updates.report(self, { status: 'success', version: 'v3' });
      assert.equal((await updates.check(self, { version: 'v3', deviceType, metadata }, 'https://updates.example.com')), null);
      await assert.rejects(updates.check({ id: device.id, orgId: f.otherOrg }, { version: 'v2', deviceType }, 'https://updates.example.com'), { code: 'not_found' });
    });

    it('refuses bad input with 400 and stores nothing', async () => {
      const device = await f.device('careless device');
      const group = await f.group('careless group', [device.id]);
      await f.setPolicy(group, { policy: 'exact_match', targetVersion: 'v2' });
      assert.equal((await f.check(device.key, { version: 'v1' })).status, 200);
      const foreign = await f.pkg('v2', {}, { orgId: f.otherOrg });
      const before = { updates: await f.count('device_updates'), events: await f.count('update_events'), audit: await f.count('audit_events'), sets: await f.count('group_packages') };
      const refusals: Array<[string, string, unknown]> = [
        ['POST', '/api/devices/self/update-check', { deviceType }],
        ['POST', '/api/devices/self/update-check', { version: '', deviceType }],
        ['POST', '/api/devices/self/update-check', { version: 'v1', deviceType, metadata: { flag: true } }],
        ['POST', '/api/devices/self/update-check', { version: 'v1', deviceType, extra: 1 }],
        ['POST', '/api/devices/self/update-status', { status: 'pending' }],
        ['POST', '/api/devices/self/update-status', { status: 'downloading', progress: 101 }],
        ['POST', '/api/devices/self/update-status', { status: 'downloading', progress: 1.5 }],
        ['POST', '/api/devices/self/update-status', {}],
      ];
      for (const [method, path, body] of refusals) {
        const reply = await f.call(method, path, device.key, body);
        assert.equal(reply.status, 400, `${path} ${JSON.stringify(body)}: ${JSON.stringify(reply.body)}`);
        assert.equal(typeof reply.body.error?.code, 'string');
      }
      const groupRefusals: Array<[string, string, unknown]> = [
        ['PUT', 'update-policy', { policy: 'exact_match' }],
        ['PUT', 'update-policy', { policy: 'latest' }],
        ['PUT', 'update-policy', { policy: 'no_update', targetVersion: 'v2' }],
        ['PUT', 'update-policy', { policy: 'exact_match', targetVersion: '' }],
        ['PUT', 'packages', { packageIds: 'pkg_1' }],
        ['PUT', 'packages', {}],
      ];
      for (const [method, path, body] of groupRefusals) {
        const reply = await f.call(method, `/api/orgs/${f.org}/groups/${group}/${path}`, f.admin, body);
        assert.equal(reply.status, 400, `${path} ${JSON.stringify(body)}: ${JSON.stringify(reply.body)}`);
      }
      for (const packageIds of [['pkg_00000000000000000000000000'], [fullV2.id, foreign.id]]) {
        const reply = await f.call('PUT', `/api/orgs/${f.org}/groups/${group}/packages`, f.admin, { packageIds });
        assert.equal(reply.status, 409, JSON.stringify(reply.body));
        assert.deepEqual(reply.body.error.details, { packageIds: packageIds.slice(-1) });
      }
      assert.deepEqual({ updates: await f.count('device_updates'), events: await f.count('update_events'), audit: await f.count('audit_events'), sets: await f.count('group_packages') }, before);
      assert.equal((await server.services.store.db.selectFrom('device_updates').select('status').where('device_id', '=', device.id).executeTakeFirstOrThrow()).status, 'pending');
    });

    it('lets only devices check for themselves, within their own organization', async () => {
      const device = await f.device('own device');
      const neighbour = await f.device('neighbour');
      const group = await f.group('own group', [device.id, neighbour.id]);
      await f.setPolicy(group, { policy: 'exact_match', targetVersion: 'v2' });
      assert.equal((await f.check(device.key, { version: 'v1' })).status, 200);

      assert.equal((await f.check(f.admin, { version: 'v1' })).status, 403, 'a person is no device');
      assert.equal((await f.report(f.admin, { status: 'success' })).status, 403);
      assert.equal((await f.call('POST', '/api/devices/self/update-check', '', { version: 'v1', deviceType })).status, 401);
      // A device reads its own update, not another's.
      assert.equal((await f.call('GET', `/api/orgs/${f.org}/devices/${device.id}/update`, device.key)).status, 200);
      assert.equal((await f.call('GET', `/api/orgs/${f.org}/devices/${device.id}/update`, neighbour.key)).status, 404);
      assert.equal((await f.call('GET', `/api/orgs/${f.org}/devices/${device.id}/update`, f.otherAdmin)).status, 404);

      // A device of another organization sees nothing of this one's packages, whatever its group asks.
      const stranger = await f.device('stranger', { orgId: f.otherOrg });
      const strangers = await f.group('strangers', [stranger.id], { orgId: f.otherOrg });
      assert.equal((await f.call('PUT', `/api/orgs/${f.otherOrg}/groups/${strangers}/update-policy`, f.otherAdmin, { policy: 'exact_match', targetVersion: 'v3' })).status, 200);
      assert.equal((await f.check(stranger.key, { version: 'v2' })).status, 204);
      assert.equal((await f.call('PUT', `/api/orgs/${f.otherOrg}/groups/${strangers}/packages`, f.otherAdmin, { packageIds: [fullV3.id] })).status, 409);

      // Group policies and package sets: admins of the organization.
      const policy = `/api/orgs/${f.org}/groups/${group}/update-policy`;
      const packages = `/api/orgs/${f.org}/groups/${group}/packages`;
      assert.equal((await f.call('PUT', policy, f.viewer, { policy: 'no_update' })).status, 403);
      assert.equal((await f.call('PUT', policy, f.operator, { policy: 'no_update' })).status, 403);
      assert.equal((await f.call('PUT', packages, f.operator, { packageIds: [] })).status, 403);
      assert.equal((await f.call('PUT', policy, device.key, { policy: 'no_update' })).status, 404);
      assert.equal((await f.call('PUT', policy, f.otherAdmin, { policy: 'no_update' })).status, 404);
      assert.equal((await f.call('GET', packages, f.otherAdmin)).status, 404);
      assert.equal((await f.call('PUT', `/api/orgs/${f.org}/groups/grp_00000000000000000000000000/update-policy`, f.admin, { policy: 'no_update' })).status, 404);
      const viewed = await f.call('GET', packages, f.viewer);
      assert.deepEqual(viewed.body, { packageIds: [] });
      const shown = await f.call('GET', `/api/orgs/${f.org}/groups/${group}`, f.viewer);
      assert.deepEqual([shown.body.updatePolicy, shown.body.targetVersion], ['exact_match', 'v2']);

      // A revoked key is refused.
      assert.equal((await f.call('DELETE', `/api/orgs/${f.org}/api-keys/${device.keyId}`, f.admin)).status, 200);
      assert.equal((await f.check(device.key, { version: 'v1' })).status, 401);
      assert.equal((await f.report(device.key, { status: 'downloading' })).status, 401);
      const audit = await f.call('GET', `/api/orgs/${f.org}/audit?targetId=${group}`, f.admin);
      assert.ok(audit.body.items.some((event: { action: string }) => event.action === 'group.update_policy'));
    });

    it("tells an online fleetd device when its group's policy or package set changes; Shelly devices hear nothing", async () => {
      const native = await f.device('native device', { externalId: 'native-1' });
      const shelly = await f.device('shelly device', { externalId: 'shellyplus1-a8032abb0001' });
      const group = await f.group('noticed group', [native.id, shelly.id]);
      const wsUrl = server.url.replace(/^http/, 'ws');
      const nativeSim = await ShellySimulator.connect({ url: `${wsUrl}/api/devices/ws`, id: 'native-1', headers: { authorization: `Bearer ${native.key}` } });
      const shellySim = await ShellySimulator.connect({ url: `${wsUrl}/shelly`, id: 'shellyplus1-a8032abb0001' });
      try {
        const links = server.server.hub.links;
        await readUntil(() => links.isLocal(native.id) && links.isLocal(shelly.id), (linked) => linked);
        await f.setPolicy(group, { policy: 'exact_match', targetVersion: 'v2' });
        const notice = await nativeSim.next(isNotice);
        assert.deepEqual(notice, { jsonrpc: '2.0', method: 'Fleetd.UpdateAvailable', params: {} });
        await f.setPackages(group, [fullV2.id]);
        await readUntil(() => nativeSim.received.filter(isNotice).length, (n) => n === 2);
        // Both devices' notices travel in the same bus message: the Shelly device has had its turn.
        await sleep(50);
        assert.deepEqual(shellySim.received.filter(isNotice), []);
        assert.equal((await f.check(native.key, { version: 'v1' })).body.packageId, fullV2.id);
      } finally {
        await nativeSim.close();
        await shellySim.close();
      }
    });
  });
}
