import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { authorize, isSystemAdmin, type Principal } from '../../../core/access.ts';
import { badRequest, forbidden, notFound } from '../../../core/errors.ts';
import type { Role } from '../../../core/roles.ts';
import { slugPattern, type Organization } from '../../../services/organizations.ts';
import { actorOf } from '../../../http/access.ts';
import { Params, rhizoTimestampOf } from './forms.ts';
import type { RhizoOptions } from './plugin.ts';
import { allPages } from '../../../store/page.ts';

/**
 * rhizo's organizations and their users. An organization is fleetd's (its folder name is the slug);
 * rhizo's member is an operator here (writes the organization's resources), its admin an admin.
 * rhizo wants a browser session for these; fleetd takes any user credential, never a device's.
 */

const slug = new RegExp(slugPattern);
const Id = Type.String({ minLength: 1, maxLength: 100 });
const OrgParams = Type.Object({ orgId: Id });
const MemberParams = Type.Object({ orgId: Id, userId: Id });

export const roleOfAdminFlag = (isAdmin: boolean): Role => (isAdmin ? 'admin' : 'operator');
const isAdminRole = (role: Role) => role === 'admin' || role === 'owner';

function organizationDict(org: Organization) {
  return {
    id: org.id,
    name: org.slug,
    full_name: org.name,
    type: 11,
    creation_timestamp: rhizoTimestampOf(org.createdAt),
    modification_timestamp: rhizoTimestampOf(org.updatedAt),
  };
}

function person(request: FastifyRequest): Principal {
  const p = actorOf(request).principal;
  if (p.kind === 'device') throw forbidden('Organizations are managed by people, not controllers');
  return p;
}

export async function organizationRoutes(app: FastifyInstance, { services, bodyLimit }: RhizoOptions): Promise<void> {
  const { organizations, memberships, store } = services;

  app.get('/api/v1/organizations', { config: { access: { actions: ['org.read'] } } }, async (request) => {
    const p = person(request);
    const orgs = isSystemAdmin(p) ? await allPages((page) => organizations.list(p, {}, page)) : await organizations.ofPrincipal(p);
    return Object.fromEntries(orgs.map((org) => [org.id, organizationDict(org)]));
  });

  app.post('/api/v1/organizations', { config: { access: { actions: ['org.create'] } } }, async (request) => {
    const params = await Params.of(request, bodyLimit);
    const folderName = params.required('folder_name');
    if (!slug.test(folderName)) throw badRequest('folder_name must be lower-case letters, digits and -, at most 63 characters');
    const fullName = params.string('full_name') || folderName;
    if (fullName.length > 200) throw badRequest('full_name is at most 200 characters');
    const org = await organizations.create(actorOf(request), { slug: folderName, name: fullName });
    return { status: 'ok', organization_id: org.id };
  });

  const membershipDict = (orgId: string, userId: string, role: Role) => ({ organization_id: orgId, user_id: userId, is_admin: isAdminRole(role) });

  app.get<{ Params: { orgId: string } }>('/api/v1/organizations/:orgId/users', { config: { access: { actions: ['member.read'] } }, schema: { params: OrgParams } }, async (request) => {
    const p = person(request);
    const org = await organizations.get(p, request.params.orgId);
    const members = await allPages((page) => memberships.list(p, org.id, {}, page));
    return Object.fromEntries(members.map((m) => [m.user.id, membershipDict(org.id, m.user.id, m.role)]));
  });

  app.post<{ Params: { orgId: string } }>('/api/v1/organizations/:orgId/users', { config: { access: { actions: ['member.manage'] } }, schema: { params: OrgParams } }, async (request) => {
    const p = person(request);
    const params = await Params.of(request, bodyLimit);
    const org = await organizations.get(p, request.params.orgId);
    authorize(p, 'member.manage', { orgId: org.id });
    const role = roleOfAdminFlag(params.integer('is_admin', 0, 1) === 1);
    let email = params.string('email_address');
    if (email === undefined) {
      const userId = params.required('user_id');
      const user = await store.db.selectFrom('users').select('email').where('id', '=', userId).executeTakeFirst();
      if (!user) throw badRequest('Unknown user_id');
      email = user.email;
    } else {
      const known = await store.db.selectFrom('users').select('id').where('email', '=', email.trim().toLowerCase()).executeTakeFirst();
      // rhizo would mail an invitation to create an account; fleetd has no invitations (yet).
      if (!known) return { status: 'error', message: 'No user has this email address; create the user first' };
    }
    await memberships.add(actorOf(request), org.id, { email, role });
    return { status: 'ok' };
  });

  const member = async (p: Principal, orgIdOrSlug: string, userId: string) => {
    const org = await organizations.get(p, orgIdOrSlug);
    authorize(p, 'member.read', { orgId: org.id });
    const row = await store.db.selectFrom('memberships').select('role').where('org_id', '=', org.id).where('user_id', '=', userId).executeTakeFirst();
    if (!row) throw notFound('Member');
    return { orgId: org.id, role: row.role as Role };
  };

  app.get<{ Params: { orgId: string; userId: string } }>(
    '/api/v1/organizations/:orgId/users/:userId',
    { config: { access: { actions: ['member.read'] } }, schema: { params: MemberParams } },
    async (request) => {
      const found = await member(person(request), request.params.orgId, request.params.userId);
      return membershipDict(found.orgId, request.params.userId, found.role);
    },
  );

  app.put<{ Params: { orgId: string; userId: string } }>(
    '/api/v1/organizations/:orgId/users/:userId',
    { config: { access: { actions: ['member.manage'] } }, schema: { params: MemberParams } },
    async (request) => {
      const params = await Params.of(request, bodyLimit);
      const found = await member(person(request), request.params.orgId, request.params.userId);
      const isAdmin = params.integer('is_admin', 0, 1);
      // An owner stays owner unless rhizo explicitly makes them a plain member.
      if (isAdmin !== undefined && isAdminRole(found.role) !== (isAdmin === 1)) {
        await memberships.changeRole(actorOf(request), found.orgId, request.params.userId, roleOfAdminFlag(isAdmin === 1));
      }
      return { status: 'ok' };
    },
  );

  app.delete<{ Params: { orgId: string; userId: string } }>(
    '/api/v1/organizations/:orgId/users/:userId',
    { config: { access: { actions: ['member.manage'] } }, schema: { params: MemberParams } },
    async (request) => {
      const found = await member(person(request), request.params.orgId, request.params.userId);
      await memberships.remove(actorOf(request), found.orgId, request.params.userId);
      return { status: 'ok' };
    },
  );
}
