import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { systemActor } from '../../src/services/actor.ts';
import { backends } from '../helpers/backends.ts';
import { login, memberWithRole, request, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * Organization isolation and roles over real HTTP. Another organization's objects are not found
 * (404, never 403: that would tell they exist); a known object one's role may not touch is 403.
 */

interface Caller {
  name: string;
  token: string;
}

/** Every route that acts inside an organization, with a body it would accept. */
const orgRoutes: Array<{ method: string; path: string; body?: Record<string, unknown> }> = [
  { method: 'GET', path: '/api/orgs/{orgId}' },
  { method: 'PATCH', path: '/api/orgs/{orgId}', body: { name: 'Taken over' } },
  { method: 'DELETE', path: '/api/orgs/{orgId}' },
  { method: 'GET', path: '/api/orgs/{orgId}/members' },
  { method: 'POST', path: '/api/orgs/{orgId}/members', body: { email: 'intruder@example.com', role: 'viewer', password: 'intruder-password-1' } },
  { method: 'PATCH', path: '/api/orgs/{orgId}/members/{userId}', body: { role: 'admin' } },
  { method: 'DELETE', path: '/api/orgs/{orgId}/members/{userId}' },
  { method: 'GET', path: '/api/orgs/{orgId}/api-keys' },
  { method: 'POST', path: '/api/orgs/{orgId}/api-keys', body: { name: 'intruder key' } },
  { method: 'GET', path: '/api/orgs/{orgId}/api-keys/{keyId}' },
  { method: 'DELETE', path: '/api/orgs/{orgId}/api-keys/{keyId}' },
  { method: 'GET', path: '/api/orgs/{orgId}/devices' },
  { method: 'POST', path: '/api/orgs/{orgId}/devices', body: { name: 'intruder device' } },
  { method: 'GET', path: '/api/orgs/{orgId}/devices/{deviceId}' },
  { method: 'PATCH', path: '/api/orgs/{orgId}/devices/{deviceId}', body: { name: 'Taken over' } },
  { method: 'DELETE', path: '/api/orgs/{orgId}/devices/{deviceId}' },
  { method: 'GET', path: '/api/orgs/{orgId}/devices/{deviceId}/state' },
  { method: 'PATCH', path: '/api/orgs/{orgId}/devices/{deviceId}/state/desired', body: { 'switch:0': { output: true } } },
  { method: 'PATCH', path: '/api/orgs/{orgId}/devices/{deviceId}/state/reported', body: { 'switch:0': { output: true } } },
  { method: 'GET', path: '/api/orgs/{orgId}/audit' },
  { method: 'GET', path: '/api/orgs/{orgId}/groups' },
  { method: 'POST', path: '/api/orgs/{orgId}/groups', body: { name: 'intruder group' } },
  { method: 'GET', path: '/api/orgs/{orgId}/groups/{groupId}' },
  { method: 'PATCH', path: '/api/orgs/{orgId}/groups/{groupId}', body: { name: 'Taken over' } },
  { method: 'DELETE', path: '/api/orgs/{orgId}/groups/{groupId}' },
  { method: 'GET', path: '/api/orgs/{orgId}/groups/{groupId}/devices' },
  { method: 'POST', path: '/api/orgs/{orgId}/groups/{groupId}/members', body: { deviceIds: ['{deviceId}'] } },
  { method: 'DELETE', path: '/api/orgs/{orgId}/groups/{groupId}/members/{deviceId}' },
  { method: 'GET', path: '/api/orgs/{orgId}/pending-devices' },
  { method: 'POST', path: '/api/orgs/{orgId}/pending-devices/{pendingId}/accept', body: { name: 'Taken over' } },
  { method: 'POST', path: '/api/orgs/{orgId}/pending-devices/{pendingId}/deny' },
  { method: 'DELETE', path: '/api/orgs/{orgId}/pending-devices/{pendingId}' },
  { method: 'GET', path: '/api/orgs/{orgId}/enrollment-tokens' },
  { method: 'POST', path: '/api/orgs/{orgId}/enrollment-tokens', body: { name: 'intruder token' } },
  { method: 'DELETE', path: '/api/orgs/{orgId}/enrollment-tokens/{tokenId}' },
  { method: 'GET', path: '/api/orgs/{orgId}/rrduino-profiles' },
  { method: 'POST', path: '/api/orgs/{orgId}/rrduino-profiles', body: { clientId: 'intruder', key: 'intruder-key' } },
  { method: 'GET', path: '/api/orgs/{orgId}/rrduino-profiles/{clientId}' },
  { method: 'PATCH', path: '/api/orgs/{orgId}/rrduino-profiles/{clientId}', body: { key: 'taken-over' } },
  { method: 'DELETE', path: '/api/orgs/{orgId}/rrduino-profiles/{clientId}' },
  { method: 'GET', path: '/api/orgs/{orgId}/packages' },
  // A JSON body where a form belongs: refused as not found before the body is looked at.
  { method: 'POST', path: '/api/orgs/{orgId}/packages', body: { version: 'v1', deviceType: 'intruder' } },
  { method: 'GET', path: '/api/orgs/{orgId}/packages/{packageId}' },
  { method: 'DELETE', path: '/api/orgs/{orgId}/packages/{packageId}' },
  { method: 'GET', path: '/api/orgs/{orgId}/packages/{packageId}/content' },
  { method: 'POST', path: '/api/orgs/{orgId}/packages/{packageId}/link' },
  { method: 'GET', path: '/api/orgs/{orgId}/signing-keys' },
  { method: 'POST', path: '/api/orgs/{orgId}/signing-keys', body: { name: 'intruder', publicKey: '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAs3Sqwtxi4C0SjicmPahFtpJU5J0Kb2EmP2bfZ34tt+g=\n-----END PUBLIC KEY-----\n' } },
  { method: 'DELETE', path: '/api/orgs/{orgId}/signing-keys/{signingKeyId}' },
  { method: 'PUT', path: '/api/orgs/{orgId}/groups/{groupId}/update-policy', body: { policy: 'exact_match', targetVersion: 'v1' } },
  { method: 'GET', path: '/api/orgs/{orgId}/groups/{groupId}/packages' },
  { method: 'PUT', path: '/api/orgs/{orgId}/groups/{groupId}/packages', body: { packageIds: ['{packageId}'] } },
  { method: 'GET', path: '/api/orgs/{orgId}/devices/{deviceId}/update' },
  { method: 'GET', path: '/api/orgs/{orgId}/deployments' },
  { method: 'POST', path: '/api/orgs/{orgId}/deployments', body: { groupId: '{groupId}', targetVersion: 'v1' } },
  { method: 'GET', path: '/api/orgs/{orgId}/deployments/{deploymentId}' },
  { method: 'GET', path: '/api/orgs/{orgId}/deployments/{deploymentId}/devices' },
  { method: 'GET', path: '/api/orgs/{orgId}/deployments/{deploymentId}/events' },
  { method: 'POST', path: '/api/orgs/{orgId}/deployments/{deploymentId}/pause' },
  { method: 'POST', path: '/api/orgs/{orgId}/deployments/{deploymentId}/resume' },
  { method: 'POST', path: '/api/orgs/{orgId}/deployments/{deploymentId}/cancel' },
  { method: 'GET', path: '/api/orgs/{orgId}/devices/{deviceId}/actions' },
  { method: 'POST', path: '/api/orgs/{orgId}/devices/{deviceId}/actions/{actionId}/runs' },
  { method: 'GET', path: '/api/orgs/{orgId}/devices/{deviceId}/action-runs' },
  { method: 'GET', path: '/api/orgs/{orgId}/devices/{deviceId}/action-runs/{runId}' },
  { method: 'POST', path: '/api/orgs/{orgId}/devices/{deviceId}/action-runs/{runId}/cancel' },
  { method: 'POST', path: '/api/orgs/{orgId}/devices/{deviceId}/file-pulls', body: { path: '/etc/hostname' } },
  { method: 'GET', path: '/api/orgs/{orgId}/file-pulls/{pullId}' },
  { method: 'GET', path: '/api/orgs/{orgId}/file-pulls/{pullId}/content' },
  { method: 'GET', path: '/api/orgs/{orgId}/shell-sessions' },
];

const fill = (path: string, values: Record<string, string>) => path.replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? assert.fail(`no value for ${name}`));

for (const backend of await backends()) {
  describe(`access [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    const A = { id: '', slug: 'default' };
    const B = { id: '', slug: 'bravo', ownerId: '', memberId: '', keyId: '', deviceId: '', groupId: '', pendingId: '', tokenId: '', clientId: 'b-client', packageId: '', signingKeyId: '', deploymentId: '', actionId: 'reboot', runId: '', pullId: '' };
    let ownerA: Caller & { userId: string };
    let adminA: Caller & { userId: string };
    let operatorA: Caller & { userId: string };
    let viewerA: Caller & { userId: string };
    let keyA: Caller;
    let adminKeyA: Caller;
    let deviceKeyA: Caller;

    const admin = () => server.admin.token;
    const call = (method: string, path: string, token: string, body?: unknown) => request(server.url, method, path, { token, body });
    const created = async (method: string, path: string, token: string, body?: unknown) => {
      const reply = await call(method, path, token, body);
      assert.ok(reply.status === 200 || reply.status === 201, `${method} ${path}: ${reply.status} ${JSON.stringify(reply.body)}`);
      return reply.body;
    };

    /** Everything the store holds about one organization, plus the number of users. */
    async function snapshot(orgId: string) {
      const db = server.services.store.db;
      return {
        org: await db.selectFrom('organizations').selectAll().where('id', '=', orgId).execute(),
        members: await db.selectFrom('memberships').selectAll().where('org_id', '=', orgId).orderBy('user_id').execute(),
        keys: await db.selectFrom('api_keys').select(['id', 'name', 'user_id', 'device_id', 'role', 'revoked_at', 'revoked_by']).where('org_id', '=', orgId).orderBy('id').execute(),
        devices: await db.selectFrom('devices').selectAll().where('org_id', '=', orgId).orderBy('id').execute(),
        groups: await db.selectFrom('device_groups').selectAll().where('org_id', '=', orgId).orderBy('id').execute(),
        groupMembers: await db
          .selectFrom('device_group_members')
          .innerJoin('device_groups', 'device_groups.id', 'device_group_members.group_id')
          .select(['device_group_members.group_id', 'device_group_members.device_id'])
          .where('device_groups.org_id', '=', orgId)
          .orderBy('device_group_members.group_id')
          .orderBy('device_group_members.device_id')
          .execute(),
        pending: await db.selectFrom('pending_devices').selectAll().where('org_id', '=', orgId).orderBy('id').execute(),
        tokens: await db.selectFrom('enrollment_tokens').selectAll().where('org_id', '=', orgId).orderBy('id').execute(),
        resources: await db.selectFrom('resources').selectAll().where('org_id', '=', orgId).orderBy('id').execute(),
        revisions: await db.selectFrom('resource_revisions').innerJoin('resources', 'resources.id', 'resource_revisions.resource_id').select('resource_revisions.id').where('resources.org_id', '=', orgId).orderBy('resource_revisions.id').execute(),
        rrduino: await db.selectFrom('rrduino_profiles').selectAll().where('org_id', '=', orgId).orderBy('client_id').execute(),
        packages: await db.selectFrom('packages').selectAll().where('org_id', '=', orgId).orderBy('id').execute(),
        signingKeys: await db.selectFrom('package_signing_keys').selectAll().where('org_id', '=', orgId).orderBy('id').execute(),
        groupPackages: await db.selectFrom('group_packages').innerJoin('device_groups', 'device_groups.id', 'group_packages.group_id').select(['group_packages.group_id', 'group_packages.package_id']).where('device_groups.org_id', '=', orgId).orderBy('group_packages.package_id').execute(),
        deployments: await db.selectFrom('deployments').selectAll().where('org_id', '=', orgId).orderBy('id').execute(),
        deploymentDevices: await db.selectFrom('deployment_devices').innerJoin('deployments', 'deployments.id', 'deployment_devices.deployment_id').selectAll('deployment_devices').where('deployments.org_id', '=', orgId).orderBy('deployment_devices.device_id').execute(),
        actionRuns: await db.selectFrom('action_runs').selectAll().where('org_id', '=', orgId).orderBy('id').execute(),
        filePulls: await db.selectFrom('file_pulls').selectAll().where('org_id', '=', orgId).orderBy('id').execute(),
        shellSessions: await db.selectFrom('shell_sessions').selectAll().where('org_id', '=', orgId).orderBy('id').execute(),
        audit: await db.selectFrom('audit_events').select('id').where('org_id', '=', orgId).orderBy('id').execute(),
        users: await db.selectFrom('users').select(['id', 'name', 'system_admin']).orderBy('id').execute(),
      };
    }

    before(async () => {
      server = await startTestServer(backend);
      A.id = server.admin.orgId;
      ownerA = { name: 'owner of A', ...(await memberWithRole(server, A.id, 'owner-a@example.com', 'owner')) };
      adminA = { name: 'admin of A', ...(await memberWithRole(server, A.id, 'admin-a@example.com', 'admin')) };
      operatorA = { name: 'operator of A', ...(await memberWithRole(server, A.id, 'operator-a@example.com', 'operator')) };
      viewerA = { name: 'viewer of A', ...(await memberWithRole(server, A.id, 'viewer-a@example.com', 'viewer')) };
      keyA = { name: 'owner API key of A', token: (await created('POST', `/api/orgs/${A.id}/api-keys`, ownerA.token, { name: 'owner key' })).key };
      adminKeyA = { name: 'admin API key of A', token: (await created('POST', `/api/orgs/${A.id}/api-keys`, adminA.token, { name: 'admin key' })).key };
      const deviceA = await created('POST', `/api/orgs/${A.id}/devices`, admin(), { name: 'device of A' });
      deviceKeyA = { name: 'device key of A', token: (await created('POST', `/api/orgs/${A.id}/api-keys`, admin(), { name: 'device key', deviceId: deviceA.id })).key };

      // B belongs to someone else entirely: the system admin is not even a member.
      B.ownerId = (await created('POST', '/api/users', admin(), { email: 'owner-b@example.com', password: 'owner-b-password' })).id;
      B.id = (await created('POST', '/api/orgs', admin(), { slug: B.slug, name: 'Bravo', ownerId: B.ownerId })).id;
      B.memberId = (await memberWithRole(server, B.id, 'member-b@example.com', 'operator')).userId;
      B.keyId = (await created('POST', `/api/orgs/${B.id}/api-keys`, admin(), { name: 'b key', userId: B.memberId })).id;
      B.deviceId = (await created('POST', `/api/orgs/${B.id}/devices`, admin(), { name: 'b device' })).id;
      B.groupId = (await created('POST', `/api/orgs/${B.id}/groups`, admin(), { name: 'b group' })).id;
      await created('POST', `/api/orgs/${B.id}/groups/${B.groupId}/members`, admin(), { deviceIds: [B.deviceId] });
      const waiting = await server.services.admission.admit({ endpoint: 'devices', externalId: 'b-waiting', orgHint: B.slug, info: {} });
      B.pendingId = waiting.status === 'pending' ? waiting.pendingId : assert.fail(`b-waiting: ${JSON.stringify(waiting)}`);
      B.tokenId = (await created('POST', `/api/orgs/${B.id}/enrollment-tokens`, admin(), { name: 'b token' })).id;
      await created('POST', `/api/orgs/${B.id}/rrduino-profiles`, admin(), { clientId: B.clientId, key: 'b-key', deviceId: B.deviceId });
      B.packageId = (await server.services.packages.upload(systemActor, B.id, { version: 'v1', deviceType: 'b' }, Readable.from([Buffer.from('b firmware')]))).id;
      const bSigningKey = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
      B.signingKeyId = (await created('POST', `/api/orgs/${B.id}/signing-keys`, admin(), { name: 'b key', publicKey: bSigningKey })).id;
      B.deploymentId = (await server.services.deployments.create(systemActor, B.id, { groupId: B.groupId, targetVersion: 'v1' })).id;
      const bDevice = { id: B.deviceId, orgId: B.id };
      await server.services.capabilities.set(bDevice, { action: true, filesystem: true, shell: true });
      await server.services.actions.advertise(bDevice, [{ id: B.actionId, name: 'Reboot' }]);
      B.runId = (await server.services.actions.run(systemActor, B.id, B.deviceId, B.actionId)).id;
      // A pull asks an online device; B's is offline, so its record is written as a finished pull would be.
      B.pullId = 'fpl_b';
      const at = new Date().toISOString();
      await server.services.store.db
        .insertInto('file_pulls')
        .values({ id: B.pullId, org_id: B.id, device_id: B.deviceId, path: '/etc/hostname', status: 'failed', blob_key: null, size: null, sha256: null, error: 'offline', requested_by_type: 'user', requested_by_id: 'system', created_at: at, finished_at: at })
        .execute();
    });
    after(async () => {
      await server?.close();
    });

    it('the table of organization routes is every organization route of the API', async () => {
      const document = await request(server.url, 'GET', '/api/openapi.json');
      const documented = Object.entries(document.body.paths as Record<string, object>)
        .filter(([path]) => path.includes('{orgId}'))
        .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`))
        .sort();
      assert.deepEqual(orgRoutes.map((r) => `${r.method} ${r.path}`).sort(), documented);
    });

    it("a user, an API key and a device of A get 404 on every route of B, by id and by slug, and nothing in B changes", async () => {
      const before = await snapshot(B.id);
      assert.equal(before.org.length, 1);
      const callers = [ownerA, keyA, deviceKeyA];
      for (const org of [B.id, B.slug]) {
        for (const route of orgRoutes) {
          const values = { orgId: org, userId: B.memberId, keyId: B.keyId, deviceId: B.deviceId, groupId: B.groupId, pendingId: B.pendingId, tokenId: B.tokenId, clientId: B.clientId, packageId: B.packageId, signingKeyId: B.signingKeyId, deploymentId: B.deploymentId, actionId: B.actionId, runId: B.runId, pullId: B.pullId };
          const path = fill(route.path, values);
          const body = route.body && (JSON.parse(fill(JSON.stringify(route.body), values)) as Record<string, unknown>);
          for (const caller of callers) {
            const reply = await call(route.method, path, caller.token, body);
            assert.equal(reply.status, 404, `${caller.name}: ${route.method} ${path} answered ${reply.status} ${JSON.stringify(reply.body)}`);
            assert.equal(reply.body.error.code, 'not_found');
          }
        }
      }
      assert.deepEqual(await snapshot(B.id), before);
    });

    it("B's resource tree is not found by A's users, keys and devices (its paths carry no {orgId}), and nothing in B changes", async () => {
      const folder = await created('POST', `/api/resources/${B.slug}`, admin(), { name: 'b folder', type: 'basic_folder' });
      await created('POST', `/api/resources/${B.slug}/b%20folder`, admin(), { name: 'b.txt', type: 'file', content: Buffer.from('b').toString('base64') });
      const before = await snapshot(B.id);
      const routes: Array<[string, string, unknown?]> = [
        ['GET', `/api/resources/${B.slug}`],
        ['GET', `/api/resources/${B.slug}/b%20folder`],
        ['GET', `/api/resources/${B.slug}/b%20folder?view=children&recursive=true`],
        ['GET', `/api/resources/${B.slug}/b%20folder/b.txt?view=content`],
        ['GET', `/api/resources/${B.slug}/b%20folder/b.txt?view=revisions`],
        ['POST', `/api/resources/${B.slug}/b%20folder`, { name: 'intruder', type: 'file' }],
        ['POST', `/api/resources/${B.slug}`, { name: 'intruder', type: 'basic_folder', createParents: true }],
        ['PATCH', `/api/resources/${B.slug}/b%20folder`, { name: 'Taken over' }],
        ['PATCH', `/api/resources/${B.slug}/b%20folder`, { permissions: [[100, null, 20]] }],
        ['DELETE', `/api/resources/${B.slug}/b%20folder`],
        ['DELETE', `/api/resources/${B.slug}/b%20folder/b.txt`],
      ];
      for (const [method, path, body] of routes) {
        for (const caller of [ownerA, keyA, deviceKeyA]) {
          const reply = await call(method, path, caller.token, body);
          assert.equal(reply.status, 404, `${caller.name}: ${method} ${path} answered ${reply.status} ${JSON.stringify(reply.body)}`);
          assert.equal(reply.body.error.code, 'not_found');
        }
      }
      // Moving B's folder into A's tree, or A's into B's, is refused too.
      assert.equal((await call('PATCH', `/api/resources/${A.slug}`, ownerA.token, { name: 'x' })).status, 400);
      await created('POST', `/api/resources/${A.slug}`, ownerA.token, { name: 'a folder', type: 'basic_folder' });
      assert.equal((await call('PATCH', `/api/resources/${A.slug}/a%20folder`, ownerA.token, { parentPath: `/${B.slug}/b folder` })).status, 400);
      assert.equal(folder.orgId, B.id);
      assert.deepEqual(await snapshot(B.id), before);
    });

    it("B's objects are not found through A's own routes either", async () => {
      const before = await snapshot(B.id);
      const paths = [
        ['GET', `/api/orgs/${A.id}/api-keys/${B.keyId}`],
        ['DELETE', `/api/orgs/${A.id}/api-keys/${B.keyId}`],
        ['PATCH', `/api/orgs/${A.id}/members/${B.memberId}`, { role: 'viewer' }],
        ['DELETE', `/api/orgs/${A.id}/members/${B.memberId}`],
        ['GET', `/api/orgs/${A.id}/devices/${B.deviceId}`],
        ['PATCH', `/api/orgs/${A.id}/devices/${B.deviceId}`, { name: 'Taken over' }],
        ['DELETE', `/api/orgs/${A.id}/devices/${B.deviceId}`],
        ['GET', `/api/orgs/${A.id}/devices/${B.deviceId}/state`],
        ['PATCH', `/api/orgs/${A.id}/devices/${B.deviceId}/state/desired`, { a: 1 }],
        ['GET', `/api/orgs/${A.id}/groups/${B.groupId}/devices`],
        ['PATCH', `/api/orgs/${A.id}/groups/${B.groupId}`, { name: 'Taken over' }],
        ['DELETE', `/api/orgs/${A.id}/groups/${B.groupId}/members/${B.deviceId}`],
        ['POST', `/api/orgs/${A.id}/pending-devices/${B.pendingId}/accept`, { name: 'Taken over' }],
        ['POST', `/api/orgs/${A.id}/pending-devices/${B.pendingId}/deny`],
        ['DELETE', `/api/orgs/${A.id}/pending-devices/${B.pendingId}`],
        ['DELETE', `/api/orgs/${A.id}/enrollment-tokens/${B.tokenId}`],
        ['GET', `/api/orgs/${A.id}/rrduino-profiles/${B.clientId}`],
        ['PATCH', `/api/orgs/${A.id}/rrduino-profiles/${B.clientId}`, { key: 'taken-over' }],
        ['DELETE', `/api/orgs/${A.id}/rrduino-profiles/${B.clientId}`],
      ] as const;
      for (const [method, path, body] of paths) {
        for (const caller of [ownerA, keyA]) {
          const reply = await call(method, path, caller.token, body);
          assert.equal(reply.status, 404, `${caller.name}: ${method} ${path} answered ${reply.status}`);
        }
      }
      const keys = await call('GET', `/api/orgs/${A.id}/api-keys`, ownerA.token);
      assert.ok(!keys.body.items.some((k: { id: string }) => k.id === B.keyId));
      const audit = await call('GET', `/api/orgs/${A.id}/audit?limit=500`, ownerA.token);
      assert.ok(audit.body.items.every((e: { orgId: string }) => e.orgId === A.id));
      assert.deepEqual(await snapshot(B.id), before);
    });

    it('a viewer or an operator may not add members (403) and nothing is stored', async () => {
      const before = await snapshot(A.id);
      for (const caller of [viewerA, operatorA]) {
        const reply = await call('POST', `/api/orgs/${A.id}/members`, caller.token, { email: 'new-by-viewer@example.com', role: 'viewer', password: 'new-password-1' });
        assert.equal(reply.status, 403, caller.name);
        assert.equal(reply.body.error.code, 'forbidden');
        const change = await call('PATCH', `/api/orgs/${A.id}/members/${viewerA.userId}`, caller.token, { role: 'viewer' });
        assert.equal(change.status, 403, caller.name);
        const remove = await call('DELETE', `/api/orgs/${A.id}/members/${operatorA.userId}`, caller.token);
        assert.equal(remove.status, 403, caller.name);
      }
      assert.deepEqual(await snapshot(A.id), before);
    });

    it('an admin may not grant owner, nor change or remove an owner (403)', async () => {
      const before = await snapshot(A.id);
      for (const caller of [adminA, adminKeyA]) {
        const grant = await call('POST', `/api/orgs/${A.id}/members`, caller.token, { email: 'would-be-owner@example.com', role: 'owner', password: 'owner-password-1' });
        assert.equal(grant.status, 403, `${caller.name} grants owner`);
        const promote = await call('PATCH', `/api/orgs/${A.id}/members/${viewerA.userId}`, caller.token, { role: 'owner' });
        assert.equal(promote.status, 403, `${caller.name} promotes to owner`);
        const demote = await call('PATCH', `/api/orgs/${A.id}/members/${ownerA.userId}`, caller.token, { role: 'viewer' });
        assert.equal(demote.status, 403, `${caller.name} demotes an owner`);
        const remove = await call('DELETE', `/api/orgs/${A.id}/members/${ownerA.userId}`, caller.token);
        assert.equal(remove.status, 403, `${caller.name} removes an owner`);
        const deleteOrg = await call('DELETE', `/api/orgs/${A.id}`, caller.token);
        assert.equal(deleteOrg.status, 403, `${caller.name} deletes the organization`);
      }
      assert.deepEqual(await snapshot(A.id), before);
    });

    it('nobody grants above their own role, keys included', async () => {
      // A key acts with its own role: a viewer key of an owner may not manage members.
      const weakKey = (await created('POST', `/api/orgs/${A.id}/api-keys`, ownerA.token, { name: 'weak', role: 'viewer' })).key as string;
      const before = await snapshot(A.id);
      const ownerKey = await call('POST', `/api/orgs/${A.id}/api-keys`, adminA.token, { name: 'too strong', role: 'owner' });
      assert.equal(ownerKey.status, 403);
      const forOwner = await call('POST', `/api/orgs/${A.id}/api-keys`, adminA.token, { name: 'for the owner', userId: ownerA.userId, role: 'owner' });
      assert.equal(forOwner.status, 403);
      const viewerKey = await call('POST', `/api/orgs/${A.id}/api-keys`, viewerA.token, { name: 'viewer as admin', role: 'admin' });
      assert.equal(viewerKey.status, 403);
      const weakAdds = await call('POST', `/api/orgs/${A.id}/members`, weakKey, { email: 'by-weak-key@example.com', role: 'viewer', password: 'weak-password-1' });
      assert.equal(weakAdds.status, 403);
      assert.deepEqual(await snapshot(A.id), before);
      // An admin grants up to admin.
      const peer = await call('POST', `/api/orgs/${A.id}/members`, adminA.token, { email: 'peer-admin@example.com', role: 'admin', password: 'peer-password-1' });
      assert.equal(peer.status, 201);
      assert.equal(peer.body.role, 'admin');
    });

    it('the last owner may not be removed or demoted (409), by anyone', async () => {
      const sole = await created('POST', '/api/users', admin(), { email: 'sole-owner@example.com', password: 'sole-password-1' });
      const org = await created('POST', '/api/orgs', admin(), { slug: 'solo', name: 'Solo', ownerId: sole.id });
      const soleToken = (await login(server.url, 'sole-owner@example.com', 'sole-password-1')).accessToken;
      const before = await snapshot(org.id);
      for (const token of [soleToken, admin()]) {
        const demote = await call('PATCH', `/api/orgs/${org.id}/members/${sole.id}`, token, { role: 'admin' });
        assert.equal(demote.status, 409);
        assert.equal(demote.body.error.code, 'conflict');
        const remove = await call('DELETE', `/api/orgs/${org.id}/members/${sole.id}`, token);
        assert.equal(remove.status, 409);
        const deleteUser = await call('DELETE', `/api/users/${sole.id}`, admin());
        assert.equal(deleteUser.status, 409);
      }
      assert.deepEqual(await snapshot(org.id), before);
      // With a second owner, the first may step down.
      await created('POST', `/api/orgs/${org.id}/members`, soleToken, { email: 'second-owner@example.com', role: 'owner', password: 'second-password-1' });
      const demoted = await call('PATCH', `/api/orgs/${org.id}/members/${sole.id}`, soleToken, { role: 'admin' });
      assert.equal(demoted.status, 200);
      assert.equal(demoted.body.role, 'admin');
    });

    it('two owners removing or demoting each other at once leave one owner', async () => {
      const first = await memberWithRole(server, A.id, 'racer-1@example.com', 'viewer');
      const second = await memberWithRole(server, A.id, 'racer-2@example.com', 'viewer');
      for (let round = 0; round < 4; round++) {
        const org = await created('POST', '/api/orgs', admin(), { slug: `race-${round}`, name: 'Race', ownerId: first.userId });
        await created('POST', `/api/orgs/${org.id}/members`, admin(), { email: 'racer-2@example.com', role: 'owner' });
        const path = (userId: string) => `/api/orgs/${org.id}/members/${userId}`;
        const [one, two] =
          round % 2 === 0
            ? await Promise.all([call('DELETE', path(second.userId), first.token), call('DELETE', path(first.userId), second.token)])
            : await Promise.all([call('PATCH', path(second.userId), first.token, { role: 'admin' }), call('PATCH', path(first.userId), second.token, { role: 'admin' })]);
        // The loser was refused as the last owner (409), or was already no owner (403) or no member (404).
        const statuses = [one.status, two.status].sort();
        assert.ok(statuses[0]! < 300 && [403, 404, 409].includes(statuses[1]!), `round ${round}: ${one.status} and ${two.status}`);
        const owners = await server.services.store.db.selectFrom('memberships').select('user_id').where('org_id', '=', org.id).where('role', '=', 'owner').execute();
        assert.equal(owners.length, 1, `round ${round}: one owner remains`);
      }
    });

    it('only system admins create organizations, list, create and delete users, and read the whole audit log (403)', async () => {
      const before = await snapshot(A.id);
      for (const caller of [ownerA, keyA]) {
        const org = await call('POST', '/api/orgs', caller.token, { slug: 'mine', name: 'Mine' });
        assert.equal(org.status, 403, `${caller.name} creates an organization`);
        const users = await call('GET', '/api/users', caller.token);
        assert.equal(users.status, 403, `${caller.name} lists users`);
        const user = await call('POST', '/api/users', caller.token, { email: 'made-by-owner@example.com', password: 'made-password-1' });
        assert.equal(user.status, 403, `${caller.name} creates a user`);
        const gone = await call('DELETE', `/api/users/${viewerA.userId}`, caller.token);
        assert.equal(gone.status, 403, `${caller.name} deletes a user`);
        const audit = await call('GET', '/api/audit', caller.token);
        assert.equal(audit.status, 403, `${caller.name} reads the whole audit log`);
      }
      const promote = await call('PATCH', `/api/users/${ownerA.userId}`, ownerA.token, { systemAdmin: true });
      assert.equal(promote.status, 403);
      assert.deepEqual(await snapshot(A.id), before);
    });

    it('another user is not found for anyone but a system admin', async () => {
      const other = await call('GET', `/api/users/${viewerA.userId}`, ownerA.token);
      assert.equal(other.status, 404);
      assert.equal(other.body.error.code, 'not_found');
      const rename = await call('PATCH', `/api/users/${viewerA.userId}`, ownerA.token, { name: 'Renamed by someone else' });
      assert.equal(rename.status, 404);
      const viaKey = await call('GET', `/api/users/${viewerA.userId}`, keyA.token);
      assert.equal(viaKey.status, 404);
      const self = await call('GET', `/api/users/${ownerA.userId}`, ownerA.token);
      assert.equal(self.status, 200);
      assert.equal(self.body.email, 'owner-a@example.com');
      const bySystemAdmin = await call('GET', `/api/users/${viewerA.userId}`, admin());
      assert.equal(bySystemAdmin.status, 200);
      const stored = await server.services.store.db.selectFrom('users').select('name').where('id', '=', viewerA.userId).executeTakeFirstOrThrow();
      assert.notEqual(stored.name, 'Renamed by someone else');
    });

    it('a system admin who is not a member does all of it in B', async () => {
      const b = `/api/orgs/${B.id}`;
      assert.equal((await call('GET', b, admin())).status, 200);
      assert.equal((await call('PATCH', b, admin(), { name: 'Bravo renamed' })).body.name, 'Bravo renamed');
      assert.equal((await call('GET', `${b}/members`, admin())).body.items.length, 2);
      const added = await call('POST', `${b}/members`, admin(), { email: 'added-by-system-admin@example.com', role: 'owner', password: 'added-password-1' });
      assert.equal(added.status, 201);
      assert.equal((await call('PATCH', `${b}/members/${B.memberId}`, admin(), { role: 'admin' })).body.role, 'admin');
      assert.equal((await call('GET', `${b}/api-keys`, admin())).body.items.length, 1);
      const key = await call('POST', `${b}/api-keys`, admin(), { name: 'system admin key', userId: B.ownerId });
      assert.equal(key.status, 201);
      assert.equal((await call('GET', `${b}/api-keys/${B.keyId}`, admin())).status, 200);
      assert.ok((await call('DELETE', `${b}/api-keys/${B.keyId}`, admin())).body.revokedAt);
      assert.equal((await call('GET', `${b}/audit`, admin())).status, 200);
      assert.equal((await call('DELETE', `${b}/members/${B.memberId}`, admin())).status, 204);
      assert.equal((await call('DELETE', `${b}/devices/${B.deviceId}`, admin())).status, 204);
      assert.equal((await call('DELETE', b, admin())).status, 204);
      assert.equal((await call('GET', b, admin())).status, 404);
      const left = await snapshot(B.id);
      assert.deepEqual([left.org, left.members, left.keys, left.devices], [[], [], [], []]);
    });
  });
}
