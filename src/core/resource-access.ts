import type { Principal } from './access.ts';
import { badRequest, FleetError } from './errors.ts';
import { atLeast } from './roles.ts';

/**
 * Permissions on the resource tree, as rhizo keeps them: each resource may carry a list of
 * `[access type, principal id, level]` entries, or null to inherit its parent's.
 */

export const accessTypes = {
  /** Anyone, signed in or not. */
  public: 100,
  /** The users of the organization named by the principal id. */
  orgUsers: 110,
  /** The devices of the organization named by the principal id. */
  orgDevices: 120,
  /** One user. */
  user: 130,
  /** One device. */
  device: 140,
} as const;

export type AccessType = (typeof accessTypes)[keyof typeof accessTypes];
export type AccessLevel = 0 | 10 | 20;
export type PermissionEntry = [accessType: AccessType, principalId: string | null, level: AccessLevel];

const accessLevels = { none: 0, read: 10, write: 20 } as const;

/** What a new organization's root folder says: its users and its devices may read and write. */
export const orgRootPermissions = (orgId: string): PermissionEntry[] => [
  [accessTypes.orgUsers, orgId, 20],
  [accessTypes.orgDevices, orgId, 20],
];

/**
 * The entries that apply to a resource, from its own list and those of its ancestors (resource
 * first, root last): an entry of a child overrides its ancestors' entry for the same type and
 * principal; the ancestors' other entries still apply.
 */
export function effectivePermissions(chainFromResourceToRoot: ReadonlyArray<readonly PermissionEntry[] | null>): PermissionEntry[] {
  const merged = new Map<string, PermissionEntry>();
  for (const entries of chainFromResourceToRoot) {
    for (const entry of entries ?? []) {
      const key = `${entry[0]}:${entry[1] ?? ''}`;
      if (!merged.has(key)) merged.set(key, entry);
    }
  }
  return [...merged.values()];
}

/**
 * The level a principal (undefined: anonymous) has on a resource of `orgId` with these effective
 * entries. System admins, and the organization's admins and owners, may always write; a viewer
 * (or a viewer's API key) never more than read. Outside its organization a principal is no more
 * than anonymous, whatever entry names it: entries cannot reach across organizations.
 */
export function accessLevel(principal: Principal | undefined, orgId: string, entries: readonly PermissionEntry[]): AccessLevel {
  if (principal?.kind === 'user' && principal.systemAdmin) return 20;
  const role = principal && principal.kind !== 'device' ? principal.orgRoles.get(orgId) : undefined;
  if (role !== undefined && atLeast(role, 'admin')) return 20;
  const matches = (entry: PermissionEntry): boolean => {
    const [type, id] = entry;
    if (type === accessTypes.public) return true;
    if (principal === undefined) return false;
    if (principal.kind === 'device') {
      if (principal.orgId !== orgId) return false;
      return (type === accessTypes.orgDevices && id === orgId) || (type === accessTypes.device && id === principal.deviceId);
    }
    if (role === undefined) return false;
    return (type === accessTypes.orgUsers && id === orgId) || (type === accessTypes.user && id === principal.userId);
  };
  let level = 0;
  for (const entry of entries) if (matches(entry)) level = Math.max(level, entry[2]);
  if (role === 'viewer') level = Math.min(level, 10);
  return level as AccessLevel;
}

/**
 * Refuses a level below `need` the way every other object is refused: what one may not read is not
 * found (nobody learns it exists), what one may read but not change is forbidden.
 */
export function requireLevel(level: AccessLevel, need: 10 | 20): void {
  if (level >= need) return;
  if (level < 10) throw new FleetError('not_found', 'Resource not found');
  throw new FleetError('forbidden', 'You may read this resource but not change it');
}

const entryTypes = new Set<number>(Object.values(accessTypes));
const entryLevels = new Set<number>(Object.values(accessLevels));

/** Checks a permission list given by a client (or read back from the store). */
export function checkPermissions(value: unknown): PermissionEntry[] {
  if (!Array.isArray(value)) throw badRequest('permissions must be a list of [access type, principal id, level]');
  return value.map((entry: unknown, i) => {
    const problem = `permissions[${i}] must be [access type (100, 110, 120, 130 or 140), principal id (null for 100), level (0, 10 or 20)]`;
    if (!Array.isArray(entry) || entry.length !== 3) throw badRequest(problem);
    const [type, id, level] = entry as unknown[];
    if (typeof type !== 'number' || !entryTypes.has(type) || typeof level !== 'number' || !entryLevels.has(level)) throw badRequest(problem);
    if (type === accessTypes.public ? id !== null : typeof id !== 'string' || id.length === 0) throw badRequest(problem);
    return [type as AccessType, id as string | null, level as AccessLevel];
  });
}
