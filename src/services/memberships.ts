import { authorize, isSystemAdmin, roleIn, type Principal } from '../core/access.ts';
import { conflict, forbidden, notFound } from '../core/errors.ts';
import { atLeast, type Role } from '../core/roles.ts';
import type { Store } from '../store/store.ts';
import { contains, nowIso, paginate, type Page, type PageRequest } from '../store/page.ts';
import type { Actor } from './actor.ts';
import { recordAudit } from './audit.ts';
import type { Organizations } from './organizations.ts';
import { assertNotLastOwner, findUserByEmail, insertUser, toUser, type User } from './users.ts';

export interface Member {
  user: Pick<User, 'id' | 'email' | 'name'>;
  role: Role;
  createdAt: string;
  updatedAt: string;
}

export interface AddMember {
  email: string;
  role: Role;
  /** With a password, a user that does not exist yet is created. */
  name?: string;
  password?: string;
}

export class Memberships {
  constructor(
    private readonly store: Store,
    private readonly organizations: Organizations,
  ) {}

  async list(principal: Principal, orgIdOrSlug: string, filter: { role?: Role; q?: string }, page: PageRequest): Promise<Page<Member>> {
    const org = await this.organizations.get(principal, orgIdOrSlug);
    authorize(principal, 'member.read', { orgId: org.id });
    let query = this.store.db
      .selectFrom('memberships')
      .innerJoin('users', 'users.id', 'memberships.user_id')
      .select(['users.id as id', 'users.email', 'users.name', 'memberships.role', 'memberships.created_at', 'memberships.updated_at'])
      .where('memberships.org_id', '=', org.id);
    if (filter.role) query = query.where('memberships.role', '=', filter.role);
    if (filter.q) {
      const q = filter.q;
      query = query.where((eb) => eb.or([contains('users.email', q), contains('users.name', q)]));
    }
    const result = await paginate(query, 'users.id', page);
    return {
      nextCursor: result.nextCursor,
      items: result.items.map((r) => ({ user: { id: r.id, email: r.email, name: r.name }, role: r.role as Role, createdAt: r.created_at, updatedAt: r.updated_at })),
    };
  }

  async add(actor: Actor, orgIdOrSlug: string, input: AddMember): Promise<Member> {
    const org = await this.organizations.get(actor.principal, orgIdOrSlug);
    authorize(actor.principal, 'member.manage', { orgId: org.id });
    assertMayGrant(actor.principal, org.id, input.role);
    return this.store.transaction(async (tx) => {
      const existing = await findUserByEmail(tx, input.email);
      let user: User;
      if (existing) {
        user = toUser(existing);
      } else {
        if (input.password === undefined) throw notFound(`User with email ${input.email} (give a password to create one)`);
        user = await insertUser(tx, { email: input.email, name: input.name, password: input.password });
        await recordAudit(tx, actor, { orgId: org.id, action: 'user.create', target: { type: 'user', id: user.id }, details: { email: user.email } });
      }
      const taken = await tx.selectFrom('memberships').select('role').where('org_id', '=', org.id).where('user_id', '=', user.id).executeTakeFirst();
      if (taken) throw conflict(`${user.email} is a member already (as ${taken.role})`);
      const now = nowIso();
      await tx.insertInto('memberships').values({ org_id: org.id, user_id: user.id, role: input.role, created_at: now, updated_at: now }).execute();
      await recordAudit(tx, actor, { orgId: org.id, action: 'member.add', target: { type: 'user', id: user.id }, details: { role: input.role } });
      return { user: { id: user.id, email: user.email, name: user.name }, role: input.role, createdAt: now, updatedAt: now };
    });
  }

  async changeRole(actor: Actor, orgIdOrSlug: string, userId: string, role: Role): Promise<Member> {
    const org = await this.organizations.get(actor.principal, orgIdOrSlug);
    authorize(actor.principal, 'member.manage', { orgId: org.id });
    return this.store.transaction(async (tx) => {
      const current = await this.find(tx, org.id, userId);
      assertMayGrant(actor.principal, org.id, current.role);
      assertMayGrant(actor.principal, org.id, role);
      if (current.role === 'owner' && role !== 'owner') await assertNotLastOwner(tx, userId, org.id);
      const updatedAt = nowIso();
      await tx.updateTable('memberships').set({ role, updated_at: updatedAt }).where('org_id', '=', org.id).where('user_id', '=', userId).execute();
      await recordAudit(tx, actor, { orgId: org.id, action: 'member.update', target: { type: 'user', id: userId }, details: { from: current.role, to: role } });
      return { ...current, role, updatedAt };
    });
  }

  async remove(actor: Actor, orgIdOrSlug: string, userId: string): Promise<void> {
    const org = await this.organizations.get(actor.principal, orgIdOrSlug);
    authorize(actor.principal, 'member.manage', { orgId: org.id });
    await this.store.transaction(async (tx) => {
      const current = await this.find(tx, org.id, userId);
      assertMayGrant(actor.principal, org.id, current.role);
      await assertNotLastOwner(tx, userId, org.id);
      await tx.deleteFrom('memberships').where('org_id', '=', org.id).where('user_id', '=', userId).execute();
      // The user's keys for this organization acted with this membership: they end with it.
      await tx.updateTable('api_keys').set({ revoked_at: nowIso(), revoked_by: 'membership.removed' }).where('org_id', '=', org.id).where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
      await recordAudit(tx, actor, { orgId: org.id, action: 'member.remove', target: { type: 'user', id: userId }, details: { role: current.role } });
    });
  }

  private async find(db: Parameters<typeof findUserByEmail>[0], orgId: string, userId: string): Promise<Member> {
    const row = await db
      .selectFrom('memberships')
      .innerJoin('users', 'users.id', 'memberships.user_id')
      .select(['users.id as id', 'users.email', 'users.name', 'memberships.role', 'memberships.created_at', 'memberships.updated_at'])
      .where('memberships.org_id', '=', orgId)
      .where('memberships.user_id', '=', userId)
      .executeTakeFirst();
    if (!row) throw notFound('Member');
    return { user: { id: row.id, email: row.email, name: row.name }, role: row.role as Role, createdAt: row.created_at, updatedAt: row.updated_at };
  }
}

/** Nobody hands out (or takes away) a role above their own; only owners deal in ownership. */
function assertMayGrant(principal: Principal, orgId: string, role: Role): void {
  if (isSystemAdmin(principal)) return;
  const own = roleIn(principal, orgId);
  if (!own || !atLeast(own, role)) throw forbidden(`Your role (${own ?? 'none'}) may not grant or change the ${role} role`);
}
