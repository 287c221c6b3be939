import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { actions, authorize, can, type Principal } from '../../src/core/access.ts';
import { FleetError } from '../../src/core/errors.ts';
import type { Role } from '../../src/core/roles.ts';

const user = (roles: Record<string, Role>, systemAdmin = false): Principal => ({
  kind: 'user',
  userId: 'usr_me',
  systemAdmin,
  orgRoles: new Map(Object.entries(roles)),
  via: 'token',
});

const refusal = (fn: () => void): string => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof FleetError);
    return error.code;
  }
  return 'allowed';
};

describe('authorize', () => {
  it('lets a system admin do every action anywhere, but never speak for a device', () => {
    for (const action of actions) assert.equal(can(user({}, true), action, { orgId: 'org_x', userId: 'usr_other' }), action !== 'device.report', action);
  });

  it('reports objects of an organization the principal is not in as not found, never forbidden', () => {
    const outsider = user({ org_a: 'owner' });
    for (const action of actions) {
      const code = refusal(() => authorize(outsider, action, { orgId: 'org_b' }));
      assert.ok(code === 'not_found' || code === 'forbidden', `${action}: ${code}`);
      if (code === 'forbidden') assert.ok(action.startsWith('user.') || action.startsWith('system.') || action === 'org.create' || action === 'device.report', action);
    }
    assert.equal(refusal(() => authorize(outsider, 'org.read', { orgId: 'org_b' })), 'not_found');
  });

  it('orders roles: viewers read, admins manage, owners delete', () => {
    assert.equal(can(user({ o: 'viewer' }), 'member.read', { orgId: 'o' }), true);
    assert.equal(refusal(() => authorize(user({ o: 'viewer' }), 'member.manage', { orgId: 'o' })), 'forbidden');
    assert.equal(refusal(() => authorize(user({ o: 'operator' }), 'member.manage', { orgId: 'o' })), 'forbidden');
    assert.equal(can(user({ o: 'admin' }), 'member.manage', { orgId: 'o' }), true);
    assert.equal(refusal(() => authorize(user({ o: 'admin' }), 'org.delete', { orgId: 'o' })), 'forbidden');
    assert.equal(can(user({ o: 'owner' }), 'org.delete', { orgId: 'o' }), true);
  });

  it("lets members manage their own API keys but only admins others'", () => {
    assert.equal(can(user({ o: 'viewer' }), 'apikey.manage', { orgId: 'o', userId: 'usr_me' }), true);
    assert.equal(can(user({ o: 'operator' }), 'apikey.manage', { orgId: 'o', userId: 'usr_other' }), false);
    assert.equal(can(user({ o: 'admin' }), 'apikey.manage', { orgId: 'o', userId: 'usr_other' }), true);
  });

  it('keeps users to their own account and system actions to system admins', () => {
    assert.equal(can(user({}), 'user.read', { userId: 'usr_me' }), true);
    assert.equal(refusal(() => authorize(user({}), 'user.read', { userId: 'usr_other' })), 'not_found');
    assert.equal(refusal(() => authorize(user({ o: 'owner' }), 'user.list')), 'forbidden');
    assert.equal(refusal(() => authorize(user({ o: 'owner' }), 'org.create')), 'forbidden');
  });

  it('gives an API key only the role it carries in its one organization', () => {
    const key: Principal = { kind: 'api_key', keyId: 'key_1', userId: 'usr_me', orgId: 'o', orgRoles: new Map([['o', 'viewer']]) };
    assert.equal(can(key, 'org.read', { orgId: 'o' }), true);
    assert.equal(refusal(() => authorize(key, 'org.update', { orgId: 'o' })), 'forbidden');
    assert.equal(refusal(() => authorize(key, 'org.read', { orgId: 'p' })), 'not_found');
    assert.equal(refusal(() => authorize(key, 'user.read', { userId: 'usr_me' })), 'not_found');
  });

  it('gives a device no management action, even in its own organization, and only reading of its packages', () => {
    const device: Principal = { kind: 'device', deviceId: 'dev_1', orgId: 'o', keyId: 'key_2' };
    for (const action of actions) assert.equal(can(device, action, { orgId: 'o', userId: 'usr_me' }), action === 'package.read', action);
    assert.equal(refusal(() => authorize(device, 'package.read', { orgId: 'p' })), 'not_found');
  });

  it('lets only the device itself report its state, and read itself', () => {
    const device: Principal = { kind: 'device', deviceId: 'dev_1', orgId: 'o', keyId: 'key_2' };
    assert.equal(can(device, 'device.report', { orgId: 'o', deviceId: 'dev_1' }), true);
    assert.equal(can(device, 'device.read', { orgId: 'o', deviceId: 'dev_1' }), true);
    assert.equal(can(device, 'device.report', { orgId: 'o', deviceId: 'dev_2' }), false);
    assert.equal(can(device, 'device.report', { orgId: 'p', deviceId: 'dev_1' }), false);
    assert.equal(can(user({ o: 'owner' }), 'device.report', { orgId: 'o', deviceId: 'dev_1' }), false);
    assert.equal(can(user({ o: 'operator' }), 'device.control', { orgId: 'o', deviceId: 'dev_1' }), true);
    assert.equal(can(user({ o: 'viewer' }), 'device.control', { orgId: 'o', deviceId: 'dev_1' }), false);
  });
});
