import { FleetError } from './errors.ts';
import { accessLevel, requireLevel, type PermissionEntry } from './resource-access.ts';
import { atLeast, type Role } from './roles.ts';

/**
 * Who is asking. Users come with a password login, a session cookie or an external OIDC token;
 * API keys act for a user inside one organization (never above that user's own role);
 * devices act only for themselves.
 */
export type Principal =
  | {
      kind: 'user';
      userId: string;
      systemAdmin: boolean;
      orgRoles: ReadonlyMap<string, Role>;
      sessionId?: string;
      via: 'token' | 'cookie' | 'oidc';
    }
  | { kind: 'api_key'; keyId: string; userId: string; orgId: string; orgRoles: ReadonlyMap<string, Role> }
  | { kind: 'device'; deviceId: string; orgId: string; keyId: string };

/** What a principal acts on: an organization's object (optionally owned by a user), a user, or the system. */
export interface Resource {
  orgId?: string;
  /** The user the object belongs to: the user itself, or the owner of an API key. */
  userId?: string;
  /** The device the object is, or belongs to. */
  deviceId?: string;
  /** A resource of the tree: the permission entries in effect on it (see core/resource-access.ts). */
  permissions?: readonly PermissionEntry[];
}

type Rule =
  /** Only system admins. */
  | { scope: 'system' }
  /** A user acting on their own account; system admins on anyone's. */
  | { scope: 'self' }
  /** Only the device the resource is (what it reports of itself). */
  | { scope: 'device' }
  /**
   * Members of the resource's organization with at least `role`; `ownRole` suffices on their own
   * objects; with `device: 'self'` a device may act on itself, with `device: 'org'` on anything of
   * its organization (the packages it installs).
   */
  | { scope: 'org'; role: Role; ownRole?: Role; device?: 'self' | 'org' }
  /** A resource of the tree: whoever its permission entries give at least `level` (10 read, 20 write). */
  | { scope: 'resource'; level: 10 | 20 };

const rules = {
  'org.create': { scope: 'system' },
  'org.read': { scope: 'org', role: 'viewer' },
  'org.update': { scope: 'org', role: 'admin' },
  'org.delete': { scope: 'org', role: 'owner' },
  'member.read': { scope: 'org', role: 'viewer' },
  'member.manage': { scope: 'org', role: 'admin' },
  'apikey.read': { scope: 'org', role: 'admin', ownRole: 'viewer' },
  'apikey.manage': { scope: 'org', role: 'admin', ownRole: 'viewer' },
  'audit.read': { scope: 'org', role: 'admin' },
  'device.read': { scope: 'org', role: 'viewer', device: 'self' },
  'device.update': { scope: 'org', role: 'operator' },
  'device.control': { scope: 'org', role: 'operator' },
  'device.manage': { scope: 'org', role: 'admin' },
  'device.report': { scope: 'device' },
  /** A shell on a device is everything on it: only admins, and only on devices that offer one. */
  'device.shell': { scope: 'org', role: 'admin' },
  /** Pulling any file off a device into blob storage, like a shell, reads everything on it. */
  'device.files': { scope: 'org', role: 'admin' },
  'package.read': { scope: 'org', role: 'viewer', device: 'org' },
  /** Uploading, signing keys and deleting: what a fleet installs is an admin's decision. */
  'package.manage': { scope: 'org', role: 'admin' },
  'deployment.read': { scope: 'org', role: 'viewer' },
  'deployment.manage': { scope: 'org', role: 'admin' },
  'user.list': { scope: 'system' },
  'user.create': { scope: 'system' },
  'user.read': { scope: 'self' },
  'user.update': { scope: 'self' },
  'user.delete': { scope: 'system' },
  'system.audit.read': { scope: 'system' },
  'resource.read': { scope: 'resource', level: 10 },
  'resource.write': { scope: 'resource', level: 20 },
  /** Who may open a resource to others: setting permissions is managing access, like managing members. */
  'resource.share': { scope: 'org', role: 'admin' },
} satisfies Record<string, Rule>;

export type Action = keyof typeof rules;
export const actions = Object.keys(rules) as Action[];

/**
 * Who may use an entry point (an HTTP route, a JSON-RPC method), declared with it: `'public'`, or the
 * actions it asks the permission function about, which needs an authenticated principal; with
 * `anonymous`, callers without credentials get through too (as nobody), for public resources.
 */
export type AccessDeclaration = 'public' | { actions: readonly Action[]; anonymous?: true };

export const principalUserId = (p: Principal): string | undefined => (p.kind === 'device' ? undefined : p.userId);

export const isSystemAdmin = (p: Principal): boolean => p.kind === 'user' && p.systemAdmin;

/** The role the principal holds in an organization, if any. */
export function roleIn(p: Principal, orgId: string): Role | undefined {
  return p.kind === 'device' ? undefined : p.orgRoles.get(orgId);
}

/**
 * The one decision every route and message type goes through. Returns normally when allowed.
 * Objects of an organization the principal does not belong to are reported as not found,
 * so that nobody learns what another organization has.
 */
export function authorize(p: Principal, action: Action, resource: Resource = {}): void {
  const rule: Rule = rules[action];
  // What a device says of itself is only true from the device: no role, not even system admin, stands in.
  if (rule.scope === 'device') {
    if (p.kind === 'device' && resource.orgId === p.orgId && resource.deviceId === p.deviceId) return;
    throw new FleetError('forbidden', `Only the device itself may ${describe(action)}`);
  }
  if (isSystemAdmin(p)) return;
  const userId = principalUserId(p);
  switch (rule.scope) {
    case 'system':
      throw new FleetError('forbidden', `Only system admins may ${describe(action)}`);
    case 'self':
      if (userId !== undefined && p.kind === 'user' && resource.userId === userId) return;
      throw new FleetError('not_found', 'User not found');
    case 'org': {
      if (p.kind === 'device' && rule.device === 'self' && resource.orgId === p.orgId && resource.deviceId === p.deviceId) return;
      if (p.kind === 'device' && rule.device === 'org' && resource.orgId === p.orgId) return;
      const role = resource.orgId === undefined ? undefined : roleIn(p, resource.orgId);
      if (role === undefined) throw new FleetError('not_found', 'Organization not found');
      const own = rule.ownRole !== undefined && userId !== undefined && resource.userId === userId;
      if (atLeast(role, own ? rule.ownRole! : rule.role)) return;
      throw new FleetError('forbidden', `Your role (${role}) may not ${describe(action)}`);
    }
    case 'resource':
      if (resource.orgId === undefined) throw new FleetError('not_found', 'Resource not found');
      return requireLevel(accessLevel(p, resource.orgId, resource.permissions ?? []), rule.level);
  }
}

export function can(p: Principal, action: Action, resource: Resource = {}): boolean {
  try {
    authorize(p, action, resource);
    return true;
  } catch {
    return false;
  }
}

const describe = (action: Action) => action.replace('.', ' ').replace('apikey', 'API key');
