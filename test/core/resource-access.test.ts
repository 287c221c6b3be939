import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authorize, can, type Principal } from '../../src/core/access.ts';
import { FleetError } from '../../src/core/errors.ts';
import { accessLevel, checkPermissions, effectivePermissions, orgRootPermissions, type PermissionEntry } from '../../src/core/resource-access.ts';
import type { Role } from '../../src/core/roles.ts';

const org = 'org_a';
const other = 'org_b';
const user = (role: Role | undefined, userId = 'usr_me', systemAdmin = false): Principal => ({
  kind: 'user',
  userId,
  systemAdmin,
  orgRoles: new Map(role ? [[org, role]] : []),
  via: 'token',
});
const device = (deviceId = 'dev_me', orgId = org): Principal => ({ kind: 'device', deviceId, orgId, keyId: 'key_d' });
const apiKey = (role: Role, orgId = org): Principal => ({ kind: 'api_key', keyId: 'key_u', userId: 'usr_me', orgId, orgRoles: new Map([[orgId, role]]) });

const refusal = (fn: () => void): string => {
  try {
    fn();
    return 'allowed';
  } catch (error) {
    assert.ok(error instanceof FleetError);
    return error.code;
  }
};

describe('resource permissions', () => {
  it("merges a chain: the child's entry overrides its ancestors' for the same type and principal, the rest is inherited", () => {
    const root = orgRootPermissions(org);
    const folder: PermissionEntry[] = [[100, null, 10], [110, org, 10]];
    const leaf: PermissionEntry[] = [[100, null, 0], [130, 'usr_x', 20]];
    assert.deepEqual(effectivePermissions([null, null, root]), root);
    assert.deepEqual(effectivePermissions([leaf, null, folder, root]), [[100, null, 0], [130, 'usr_x', 20], [110, org, 10], [120, org, 20]]);
  });

  /** Each kind of entry × each level, asked of every kind of principal. */
  const principals: Record<string, Principal | undefined> = {
    anonymous: undefined,
    member: user('operator'),
    'member key': apiKey('operator'),
    viewer: user('viewer'),
    'other user': user('operator', 'usr_other'),
    outsider: user(undefined),
    device: device(),
    'other device': device('dev_other'),
    'device of another organization': device('dev_me', other),
  };
  const entries: Record<string, (level: 0 | 10 | 20) => PermissionEntry> = {
    public: (level) => [100, null, level],
    'organization users': (level) => [110, org, level],
    'organization devices': (level) => [120, org, level],
    'one user': (level) => [130, 'usr_me', level],
    'one device': (level) => [140, 'dev_me', level],
  };
  const matches: Record<string, string[]> = {
    public: Object.keys(principals),
    'organization users': ['member', 'member key', 'viewer', 'other user'],
    'organization devices': ['device', 'other device'],
    'one user': ['member', 'member key', 'viewer'],
    'one device': ['device'],
  };

  for (const [entryName, entry] of Object.entries(entries)) {
    it(`${entryName}: none, read and write reach exactly the principals it names (viewers at most read)`, () => {
      for (const level of [0, 10, 20] as const) {
        for (const [name, principal] of Object.entries(principals)) {
          const expected = matches[entryName]!.includes(name) ? (name === 'viewer' ? Math.min(level, 10) : level) : 0;
          assert.equal(accessLevel(principal, org, [entry(level)]), expected, `${entryName} ${level} for ${name}`);
        }
      }
    });
  }

  it('lets system admins and organization admins and owners write whatever the entries say, but not admins of another organization', () => {
    const closed: PermissionEntry[] = [[110, org, 0], [100, null, 0]];
    assert.equal(accessLevel(user(undefined, 'usr_root', true), org, closed), 20);
    assert.equal(accessLevel(user('admin'), org, closed), 20);
    assert.equal(accessLevel(user('owner'), org, closed), 20);
    assert.equal(accessLevel(apiKey('admin'), org, closed), 20);
    assert.equal(accessLevel(apiKey('admin', other), org, [[110, org, 20]]), 0);
    // An entry naming another organization's users gives its members nothing here.
    assert.equal(accessLevel(user('owner'), other, [[110, org, 20]]), 0);
  });

  it('caps a viewer key as a viewer', () => {
    assert.equal(accessLevel(apiKey('viewer'), org, [[130, 'usr_me', 20]]), 10);
  });

  it('decides through authorize: no read is not found, read without write is forbidden', () => {
    const readOnly: PermissionEntry[] = [[110, org, 10]];
    assert.equal(refusal(() => authorize(user('operator'), 'resource.read', { orgId: org, permissions: readOnly })), 'allowed');
    assert.equal(refusal(() => authorize(user('operator'), 'resource.write', { orgId: org, permissions: readOnly })), 'forbidden');
    assert.equal(refusal(() => authorize(user('operator'), 'resource.read', { orgId: org, permissions: [] })), 'not_found');
    assert.equal(refusal(() => authorize(user(undefined), 'resource.write', { orgId: org, permissions: readOnly })), 'not_found');
    assert.equal(can(device(), 'resource.write', { orgId: org, permissions: orgRootPermissions(org) }), true);
    assert.equal(can(device('dev_me', other), 'resource.read', { orgId: org, permissions: orgRootPermissions(org) }), false);
    assert.equal(refusal(() => authorize(user('operator'), 'resource.share', { orgId: org })), 'forbidden');
    assert.equal(can(user('admin'), 'resource.share', { orgId: org }), true);
  });

  it('checks permission lists from clients', () => {
    assert.deepEqual(checkPermissions([[100, null, 10], [130, 'usr_x', 20]]), [[100, null, 10], [130, 'usr_x', 20]]);
    for (const bad of [{}, [[100, 'x', 10]], [[110, null, 10]], [[150, 'x', 10]], [[110, 'o', 15]], [[110, 'o']], ['x']]) {
      assert.throws(() => checkPermissions(bad), FleetError, JSON.stringify(bad));
    }
  });
});
