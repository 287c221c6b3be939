import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { systemActor } from '../../src/services/actor.ts';
import type { Package } from '../../src/services/packages/package.ts';
import { memberWithRole, request, type Reply, type TestServer } from '../helpers/server.ts';

/**
 * What the update and deployment tests set up through the API: devices with keys of their own,
 * packages (stored by the packages service, as an upload would), groups with members, and the calls
 * a device makes.
 */
export interface OtaFixtures {
  org: string;
  otherOrg: string;
  admin: string;
  viewer: string;
  operator: string;
  /** An admin of the other organization only. */
  otherAdmin: string;
  call(method: string, path: string, token: string, body?: unknown): Promise<Reply>;
  device(name: string, options?: { orgId?: string; externalId?: string }): Promise<{ id: string; key: string; keyId: string }>;
  pkg(version: string, metadata?: Record<string, string>, options?: { deviceType?: string; orgId?: string }): Promise<Package>;
  group(name: string, deviceIds: string[], options?: { orgId?: string; priority?: number }): Promise<string>;
  setPolicy(groupId: string, policy: { policy: string; targetVersion?: string }): Promise<void>;
  setPackages(groupId: string, packageIds: string[]): Promise<void>;
  check(key: string, facts: { version: string; deviceType?: string; metadata?: Record<string, string> }): Promise<Reply>;
  report(key: string, report: Record<string, unknown>): Promise<Reply>;
  count(table: 'device_updates' | 'update_events' | 'deployments' | 'deployment_devices' | 'group_packages' | 'audit_events'): Promise<number>;
}

export const deviceType = 'board-a';

export async function otaFixtures(server: TestServer): Promise<OtaFixtures> {
  const call = (method: string, path: string, token: string, body?: unknown) => request(server.url, method, path, { token, body });
  const admin = server.admin.token;
  const org = server.admin.orgId;
  const suffix = Math.random().toString(36).slice(2, 8);
  const viewer = (await memberWithRole(server, org, `ota-viewer-${suffix}@example.com`, 'viewer')).token;
  const operator = (await memberWithRole(server, org, `ota-operator-${suffix}@example.com`, 'operator')).token;
  const otherOrg = (await call('POST', '/api/orgs', admin, { slug: `other-${suffix}`, name: 'Other' })).body.id as string;
  const otherAdmin = (await memberWithRole(server, otherOrg, `ota-other-admin-${suffix}@example.com`, 'admin')).token;
  let packageCount = 0;

  return {
    org,
    otherOrg,
    admin,
    viewer,
    operator,
    otherAdmin,
    call,
    async device(name, options = {}) {
      const orgId = options.orgId ?? org;
      const created = await call('POST', `/api/orgs/${orgId}/devices`, admin, { name, ...(options.externalId && { externalId: options.externalId }) });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const key = await call('POST', `/api/orgs/${orgId}/api-keys`, admin, { name: `${name} key`, deviceId: created.body.id });
      assert.equal(key.status, 201, JSON.stringify(key.body));
      return { id: created.body.id, key: key.body.key, keyId: key.body.id };
    },
    async pkg(version, metadata = {}, options = {}) {
      packageCount += 1;
      const content = Buffer.from(`firmware ${version} #${packageCount}`);
      return server.services.packages.upload(systemActor, options.orgId ?? org, { version, deviceType: options.deviceType ?? deviceType, metadata }, Readable.from([content]));
    },
    async group(name, deviceIds, options = {}) {
      const orgId = options.orgId ?? org;
      const created = await call('POST', `/api/orgs/${orgId}/groups`, admin, { name, ...(options.priority !== undefined && { priority: options.priority }) });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      if (deviceIds.length > 0) {
        const added = await call('POST', `/api/orgs/${orgId}/groups/${created.body.id}/members`, admin, { deviceIds });
        assert.equal(added.status, 200, JSON.stringify(added.body));
      }
      return created.body.id;
    },
    async setPolicy(groupId, policy) {
      const set = await call('PUT', `/api/orgs/${org}/groups/${groupId}/update-policy`, admin, policy);
      assert.equal(set.status, 200, JSON.stringify(set.body));
    },
    async setPackages(groupId, packageIds) {
      const set = await call('PUT', `/api/orgs/${org}/groups/${groupId}/packages`, admin, { packageIds });
      assert.equal(set.status, 200, JSON.stringify(set.body));
    },
    check: (key, facts) => call('POST', '/api/devices/self/update-check', key, { deviceType, ...facts }),
    report: (key, report) => call('POST', '/api/devices/self/update-status', key, report),
    async count(table) {
      const row = await server.services.store.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}
