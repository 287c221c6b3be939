import { authorize, isSystemAdmin, principalUserId, type Principal } from '../core/access.ts';
import { conflict, FleetError, notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Role } from '../core/roles.ts';
import type { Database } from '../store/schema.ts';
import { isUniqueViolation, type Db, type Store } from '../store/store.ts';
import { contains, nowIso, paginate, type Page, type PageRequest } from '../store/page.ts';
import type { Actor } from './actor.ts';
import { recordAudit } from './audit.ts';
import type { NodeCache } from './node-cache.ts';

export interface Organization {
  id: string;
  slug: string;
  name: string;
  createdAt: string;
  updatedAt: string;
}

const toOrganization = (row: Database['organizations']): Organization => ({
  id: row.id,
  slug: row.slug,
  name: row.name,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

export const slugPattern = '^[a-z0-9][a-z0-9-]{0,62}$';

/** Finds an organization by id or slug. */
export async function findOrganization(db: Db, idOrSlug: string): Promise<Organization | undefined> {
  const row = await db
    .selectFrom('organizations')
    .selectAll()
    .where(idOrSlug.startsWith('org_') ? 'id' : 'slug', '=', idOrSlug)
    .executeTakeFirst();
  return row && toOrganization(row);
}

export class Organizations {
  constructor(
    private readonly store: Store,
    private readonly cache: NodeCache<Organization>,
  ) {}

  /**
   * The organization, for a service that then authorizes its own action on it: an unknown
   * organization and one the principal may not see are both not found. Nearly every request
   * names one, so it comes from the node cache when it can.
   */
  async resolve(idOrSlug: string): Promise<Organization> {
    const cached = this.cache.recall(idOrSlug);
    if (cached) return cached;
    const generation = this.cache.generation;
    const org = await findOrganization(this.store.db, idOrSlug);
    if (!org) throw notFound('Organization');
    this.cache.remember(org.id, org, generation);
    this.cache.remember(org.slug, org, generation);
    return org;
  }

  /** The organization, if the principal may do `org.read` on it; others' are reported as not found. */
  async get(principal: Principal, idOrSlug: string): Promise<Organization> {
    const org = await this.resolve(idOrSlug);
    authorize(principal, 'org.read', { orgId: org.id });
    return org;
  }

  /** The organizations the principal belongs to, with its role in each (none for a device). */
  async ofPrincipal(principal: Principal): Promise<Array<Organization & { role: Role | null }>> {
    const roles: ReadonlyMap<string, Role | null> = principal.kind === 'device' ? new Map([[principal.orgId, null]]) : principal.orgRoles;
    if (roles.size === 0) return [];
    const rows = await this.store.db.selectFrom('organizations').selectAll().where('id', 'in', [...roles.keys()]).orderBy('id').execute();
    return rows.map((row) => ({ ...toOrganization(row), role: roles.get(row.id) ?? null }));
  }

  async list(principal: Principal, filter: { q?: string }, page: PageRequest): Promise<Page<Organization>> {
    let query = this.store.db.selectFrom('organizations').selectAll();
    if (!isSystemAdmin(principal)) {
      const ids = principal.kind === 'device' ? [principal.orgId] : [...principal.orgRoles.keys()];
      if (ids.length === 0) return { items: [], nextCursor: null };
      query = query.where('id', 'in', ids);
    }
    if (filter.q) {
      const q = filter.q;
      query = query.where((eb) => eb.or([contains('name', q), contains('slug', q)]));
    }
    const result = await paginate(query, 'id', page);
    return { items: result.items.map(toOrganization), nextCursor: result.nextCursor };
  }

  /** Creates an organization; the creating user (or `ownerId`) becomes its owner. */
  async create(actor: Actor, input: { slug: string; name: string; ownerId?: string }): Promise<Organization> {
    authorize(actor.principal, 'org.create');
    const ownerId = input.ownerId ?? principalUserId(actor.principal);
    return this.store.transaction(async (tx) => {
      const now = nowIso();
      const row = { id: newId('org'), slug: input.slug, name: input.name, created_at: now, updated_at: now };
      await insertUnique(tx, row);
      if (ownerId && ownerId !== 'system') {
        const owner = await tx.selectFrom('users').select('id').where('id', '=', ownerId).executeTakeFirst();
        if (!owner) throw new FleetError('validation_failed', 'ownerId is not a known user', { details: [{ field: 'ownerId', message: 'is not a known user' }] });
        await tx.insertInto('memberships').values({ org_id: row.id, user_id: ownerId, role: 'owner', created_at: now, updated_at: now }).execute();
      }
      await recordAudit(tx, actor, { orgId: row.id, action: 'org.create', target: { type: 'org', id: row.id }, details: { slug: row.slug, name: row.name, ownerId } });
      return toOrganization(row);
    });
  }

  async update(actor: Actor, idOrSlug: string, changes: { slug?: string; name?: string }): Promise<Organization> {
    const org = await this.get(actor.principal, idOrSlug);
    authorize(actor.principal, 'org.update', { orgId: org.id });
    return this.store.transaction(async (tx) => {
      const values = { ...(changes.slug !== undefined && { slug: changes.slug }), ...(changes.name !== undefined && { name: changes.name }), updated_at: nowIso() };
      try {
        await tx.updateTable('organizations').set(values).where('id', '=', org.id).execute();
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict(`An organization with slug ${JSON.stringify(changes.slug)} exists already`);
        throw error;
      }
      await recordAudit(tx, actor, { orgId: org.id, action: 'org.update', target: { type: 'org', id: org.id }, details: changes });
      return { ...org, ...changes, updatedAt: values.updated_at };
    });
  }

  /** Deletes the organization with its memberships and keys. */
  async delete(actor: Actor, idOrSlug: string): Promise<void> {
    const org = await this.get(actor.principal, idOrSlug);
    authorize(actor.principal, 'org.delete', { orgId: org.id });
    await this.store.transaction(async (tx) => {
      // Sequence values and archive rows have no foreign key to cascade on (migration 0010).
      const sequences = tx.selectFrom('sequences').select('resource_id').where('org_id', '=', org.id);
      await tx.deleteFrom('sequence_values').where('sequence_id', 'in', sequences).execute();
      await tx.deleteFrom('rrd_rows').where('sequence_id', 'in', sequences).execute();
      await tx.deleteFrom('organizations').where('id', '=', org.id).execute();
      await recordAudit(tx, actor, { orgId: org.id, action: 'org.delete', target: { type: 'org', id: org.id }, details: { slug: org.slug } });
    });
  }
}

async function insertUnique(db: Db, row: Database['organizations']): Promise<void> {
  try {
    await db.insertInto('organizations').values(row).execute();
  } catch (error) {
    if (isUniqueViolation(error)) throw conflict(`An organization with slug ${JSON.stringify(row.slug)} exists already`);
    throw error;
  }
}
