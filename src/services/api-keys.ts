import { authorize, isSystemAdmin, principalUserId, roleIn, type Principal } from '../core/access.ts';
import { badRequest, forbidden, notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { atLeast, weaker, type Role } from '../core/roles.ts';
import { constantTimeEqual, newApiKey, parseApiKey, sha256 } from '../core/secrets.ts';
import type { Database } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import { nowIso, paginate, type Page, type PageRequest } from '../store/page.ts';
import type { Actor } from './actor.ts';
import { recordAudit } from './audit.ts';
import { findDevice } from './devices.ts';
import type { Organizations } from './organizations.ts';

export interface ApiKey {
  id: string;
  orgId: string;
  name: string;
  /** The non-secret part of the key (`fk_<prefix>_...`), to recognize it in lists. */
  prefix: string;
  userId: string | null;
  deviceId: string | null;
  role: Role | null;
  createdBy: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
  revokedBy: string | null;
}

const toApiKey = (row: Database['api_keys']): ApiKey => ({
  id: row.id,
  orgId: row.org_id,
  name: row.name,
  prefix: row.prefix,
  userId: row.user_id,
  deviceId: row.device_id,
  role: row.role as Role | null,
  createdBy: row.created_by,
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  lastUsedAt: row.last_used_at,
  revokedAt: row.revoked_at,
  revokedBy: row.revoked_by,
});

interface KeyBinding {
  userId: string | null;
  deviceId: string | null;
  role: Role | null;
}

/** How often a key's last use is written back: often enough to be useful, rarely enough to cost nothing. */
const lastUsedResolutionMs = 60_000;

export class ApiKeys {
  constructor(
    private readonly store: Store,
    private readonly organizations: Organizations,
  ) {}

  /**
   * Creates a key acting for a user (by default the caller) with at most that user's role, or, with
   * `deviceId`, a key a device authenticates with (admins only). The secret is in the result and
   * nowhere else: it is stored only as a hash.
   */
  async create(
    actor: Actor,
    orgIdOrSlug: string,
    input: { name: string; userId?: string; deviceId?: string; role?: Role; expiresAt?: string },
  ): Promise<ApiKey & { key: string }> {
    const p = actor.principal;
    const org = await this.organizations.get(p, orgIdOrSlug);
    if (p.kind !== 'user') throw forbidden('API keys are created by users, not by other keys or devices');
    if (input.deviceId !== undefined && (input.userId !== undefined || input.role !== undefined)) {
      throw badRequest('A key is bound to a user (userId, role) or to a device (deviceId), not both');
    }
    if (input.expiresAt !== undefined && Date.parse(input.expiresAt) <= Date.now()) throw badRequest('expiresAt is in the past');
    const bound = input.deviceId !== undefined ? await this.deviceBinding(p, org.id, input.deviceId) : await this.userBinding(p, org.id, input.userId ?? p.userId, input.role);

    const secret = newApiKey();
    const row: Database['api_keys'] = {
      id: newId('key'),
      org_id: org.id,
      prefix: secret.prefix,
      secret_hash: secret.secretHash,
      name: input.name,
      user_id: bound.userId,
      device_id: bound.deviceId,
      role: bound.role,
      created_by: p.userId,
      created_at: nowIso(),
      expires_at: input.expiresAt ? new Date(input.expiresAt).toISOString() : null,
      last_used_at: null,
      revoked_at: null,
      revoked_by: null,
    };
    await this.store.transaction(async (tx) => {
      await tx.insertInto('api_keys').values(row).execute();
      await recordAudit(tx, actor, { orgId: org.id, action: 'api_key.create', target: { type: 'api_key', id: row.id }, details: { name: row.name, ...bound } });
    });
    return { ...toApiKey(row), key: secret.key };
  }

  private async userBinding(p: Principal, orgId: string, userId: string, requested: Role | undefined): Promise<KeyBinding> {
    authorize(p, 'apikey.manage', { orgId, userId });
    const membership = await this.store.db.selectFrom('memberships').select('role').where('org_id', '=', orgId).where('user_id', '=', userId).executeTakeFirst();
    if (!membership) throw notFound('Member');
    const userRole = membership.role as Role;
    const role = requested ?? userRole;
    if (!atLeast(userRole, role)) throw forbidden(`The key's user is ${userRole} in this organization; a key cannot be ${role}`);
    if (!isSystemAdmin(p) && !atLeast(roleIn(p, orgId)!, role)) throw forbidden(`Your role may not create a ${role} key`);
    return { userId, deviceId: null, role };
  }

  private async deviceBinding(p: Principal, orgId: string, deviceId: string): Promise<KeyBinding> {
    authorize(p, 'apikey.manage', { orgId });
    if (!(await findDevice(this.store.db, orgId, deviceId))) throw notFound('Device');
    return { userId: null, deviceId, role: null };
  }

  /** Admins see every key of the organization; other members only their own. */
  async list(principal: Principal, orgIdOrSlug: string, filter: { userId?: string; revoked?: boolean }, page: PageRequest): Promise<Page<ApiKey>> {
    const org = await this.organizations.get(principal, orgIdOrSlug);
    const own = principalUserId(principal);
    const seesAll = isSystemAdmin(principal) || atLeast(roleIn(principal, org.id) ?? 'viewer', 'admin');
    const userId = seesAll ? filter.userId : own;
    authorize(principal, 'apikey.read', { orgId: org.id, userId });
    let query = this.store.db.selectFrom('api_keys').selectAll().where('org_id', '=', org.id);
    if (userId !== undefined) query = query.where('user_id', '=', userId);
    if (filter.revoked !== undefined) query = query.where('revoked_at', filter.revoked ? 'is not' : 'is', null);
    const result = await paginate(query, 'id', page);
    return { items: result.items.map(toApiKey), nextCursor: result.nextCursor };
  }

  async get(principal: Principal, orgIdOrSlug: string, keyId: string): Promise<ApiKey> {
    const org = await this.organizations.get(principal, orgIdOrSlug);
    const row = await this.store.db.selectFrom('api_keys').selectAll().where('org_id', '=', org.id).where('id', '=', keyId).executeTakeFirst();
    if (!row) throw notFound('API key');
    try {
      authorize(principal, 'apikey.read', { orgId: org.id, userId: row.user_id ?? undefined });
    } catch {
      throw notFound('API key');
    }
    return toApiKey(row);
  }

  async revoke(actor: Actor, orgIdOrSlug: string, keyId: string): Promise<ApiKey> {
    const key = await this.get(actor.principal, orgIdOrSlug, keyId);
    authorize(actor.principal, 'apikey.manage', { orgId: key.orgId, userId: key.userId ?? undefined });
    if (key.revokedAt) return key;
    const revokedAt = nowIso();
    const revokedBy = principalUserId(actor.principal) ?? actor.principal.kind;
    await this.store.transaction(async (tx) => {
      await tx.updateTable('api_keys').set({ revoked_at: revokedAt, revoked_by: revokedBy }).where('id', '=', key.id).execute();
      await recordAudit(tx, actor, { orgId: key.orgId, action: 'api_key.revoke', target: { type: 'api_key', id: key.id }, details: { name: key.name } });
    });
    return { ...key, revokedAt, revokedBy };
  }

  /** Who a presented key stands for (and until when), or undefined when it is unknown, revoked or expired. */
  async authenticate(presented: string): Promise<{ principal: Principal; expiresAt?: number } | undefined> {
    const parsed = parseApiKey(presented);
    if (!parsed) return undefined;
    const row = await this.store.db.selectFrom('api_keys').selectAll().where('prefix', '=', parsed.prefix).executeTakeFirst();
    if (!row || !constantTimeEqual(row.secret_hash, sha256(parsed.secret))) return undefined;
    const now = Date.now();
    if (row.revoked_at !== null || (row.expires_at !== null && Date.parse(row.expires_at) <= now)) return undefined;
    if (row.last_used_at === null || Date.parse(row.last_used_at) + lastUsedResolutionMs < now) {
      await this.store.db.updateTable('api_keys').set({ last_used_at: nowIso(now) }).where('id', '=', row.id).execute();
    }
    const expiresAt = row.expires_at === null ? undefined : Date.parse(row.expires_at);
    if (row.device_id !== null) return { principal: { kind: 'device', deviceId: row.device_id, orgId: row.org_id, keyId: row.id }, expiresAt };
    const membership = await this.store.db.selectFrom('memberships').select('role').where('org_id', '=', row.org_id).where('user_id', '=', row.user_id!).executeTakeFirst();
    if (!membership) return undefined;
    const role = weaker(row.role as Role, membership.role as Role);
    return { principal: { kind: 'api_key', keyId: row.id, userId: row.user_id!, orgId: row.org_id, orgRoles: new Map([[row.org_id, role]]) }, expiresAt };
  }
}
