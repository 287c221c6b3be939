import { Type } from 'typebox';
import { isSystemAdmin, type Principal, type Resource } from '../../core/access.ts';
import { FleetError } from '../../core/errors.ts';
import type { Hub } from '../../hub/hub.ts';
import type { Organization } from '../../services/organizations.ts';

/** The `org` param every method about an organization takes. */
export const OrgParam = Type.Optional(
  Type.String({ minLength: 1, maxLength: 100, description: 'Organization id or slug; may be left out by a principal of exactly one organization' }),
);

/** Organizations the principal is a member of (an API key: its own). */
const memberOrgIds = (principal: Principal): string[] => (principal.kind === 'device' ? [principal.orgId] : [...principal.orgRoles.keys()]);

/**
 * The organization a call is about: the one it names, or else the principal's only one. One it names
 * but may not see is not refused here: the method's access check reports it as not found.
 */
export async function orgOf(hub: Hub, principal: Principal, org: string | undefined): Promise<Organization> {
  if (org !== undefined) return hub.services.organizations.resolve(org);
  const ids = memberOrgIds(principal);
  if (ids.length !== 1) {
    const why = ids.length === 0 ? 'you belong to no organization' : `you belong to ${ids.length} organizations`;
    throw new FleetError('validation_failed', `Invalid params: say which organization with org (${why})`, { details: [{ field: 'org', message: `is required: ${why}` }] });
  }
  return hub.services.organizations.resolve(ids[0]!);
}

/** What a method's declared actions are asked about: the organization of the call. */
export const orgResource = async (hub: Hub, principal: Principal, org: string | undefined): Promise<Resource> => ({ orgId: (await orgOf(hub, principal, org)).id });

/**
 * The organizations whose events a principal may watch without naming one: every one it belongs to,
 * or 'all' for a system admin (with the events of no organization).
 */
export const watchableOrgIds = (principal: Principal): string[] | 'all' => (isSystemAdmin(principal) ? 'all' : memberOrgIds(principal));
