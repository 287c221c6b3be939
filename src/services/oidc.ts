import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Principal } from '../core/access.ts';
import { unauthenticated } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { isRole, roleRank, type Role } from '../core/roles.ts';
import { isUniqueViolation, type Store } from '../store/store.ts';
import { nowIso } from '../store/page.ts';
import { systemActor } from './actor.ts';
import { recordAudit } from './audit.ts';
import { findOrganization } from './organizations.ts';
import { normalizeEmail } from './users.ts';

export interface OidcSettings {
  issuer: string;
  jwksUrl: string;
  audience: string;
  rolesClaim: string;
  roleMap: Record<string, Role | 'system_admin'>;
  organization: string;
  emailClaim: string;
}

/**
 * Accepts access tokens of an external OAuth2/OIDC issuer (Keycloak, Zitadel, ...): checks them
 * against the issuer's JWKS, finds or creates the user, and keeps their membership in the configured
 * organization in step with the roles the token carries.
 */
export class OidcTokens {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;

  constructor(
    private readonly store: Store,
    private readonly settings: OidcSettings,
  ) {
    this.jwks = createRemoteJWKSet(new URL(settings.jwksUrl), { cooldownDuration: 30_000, timeoutDuration: 5_000 });
  }

  /** True when `payload` (not yet verified) names our external issuer. */
  claims(issuer: unknown): boolean {
    return issuer === this.settings.issuer;
  }

  async principal(token: string): Promise<Principal> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.jwks, {
        issuer: this.settings.issuer,
        ...(this.settings.audience && { audience: this.settings.audience }),
      }));
    } catch (error) {
      throw unauthenticated(`External token refused: ${(error as Error).message}`);
    }
    const email = payload[this.settings.emailClaim];
    if (typeof payload.sub !== 'string' || typeof email !== 'string') throw unauthenticated(`External token lacks sub or ${this.settings.emailClaim}`);
    const external = this.mapRoles(claimAt(payload, this.settings.rolesClaim));
    const userId = await this.findOrCreateUser(`${this.settings.issuer}#${payload.sub}`, normalizeEmail(email), payload.email_verified === true, payload.name);
    const org = await findOrganization(this.store.db, this.settings.organization);
    const orgRoles = new Map<string, Role>();
    if (org) {
      await this.syncMembership(org.id, userId, external.role);
      if (external.role) orgRoles.set(org.id, external.role);
    }
    const memberships = await this.store.db.selectFrom('memberships').select(['org_id', 'role']).where('user_id', '=', userId).execute();
    for (const m of memberships) if (!orgRoles.has(m.org_id)) orgRoles.set(m.org_id, m.role as Role);
    return { kind: 'user', userId, systemAdmin: external.systemAdmin, orgRoles, via: 'oidc' };
  }

  private mapRoles(names: unknown): { role?: Role; systemAdmin: boolean } {
    let role: Role | undefined;
    let systemAdmin = false;
    for (const name of Array.isArray(names) ? names : typeof names === 'string' ? names.split(/[\s,]+/) : []) {
      const key = String(name);
      // Own keys only: a role named like an Object property ("constructor") is not in the map.
      const mapped = (Object.hasOwn(this.settings.roleMap, key) ? this.settings.roleMap[key] : undefined) ?? (isRole(name) || name === 'system_admin' ? name : undefined);
      if (mapped === 'system_admin') systemAdmin = true;
      else if (mapped && (!role || roleRank(mapped) > roleRank(role))) role = mapped;
    }
    return { role, systemAdmin };
  }

  private async findOrCreateUser(subject: string, email: string, emailVerified: boolean, name: unknown): Promise<string> {
    const bySubject = await this.store.db.selectFrom('users').select('id').where('external_subject', '=', subject).executeTakeFirst();
    if (bySubject) return bySubject.id;
    try {
      return await this.createOrLinkUser(subject, email, emailVerified, name);
    } catch (error) {
      // A new user's first requests come in parallel: the one that loses the race finds the user the other made.
      const made = isUniqueViolation(error) && (await this.store.db.selectFrom('users').select('id').where('external_subject', '=', subject).executeTakeFirst());
      if (made) return made.id;
      throw error;
    }
  }

  private createOrLinkUser(subject: string, email: string, emailVerified: boolean, name: unknown): Promise<string> {
    return this.store.transaction(async (tx) => {
      const byEmail = await tx.selectFrom('users').select(['id', 'external_subject']).where('email', '=', email).executeTakeFirst();
      // Made meanwhile by a parallel request of the same identity.
      if (byEmail?.external_subject === subject) return byEmail.id;
      if (byEmail) {
        // Linking an existing account to an external identity needs the issuer's word that the email is theirs.
        if (!emailVerified || byEmail.external_subject !== null) throw unauthenticated('This email belongs to another account; the issuer must mark it verified to link it');
        await tx.updateTable('users').set({ external_subject: subject, updated_at: nowIso() }).where('id', '=', byEmail.id).execute();
        await recordAudit(tx, systemActor, { orgId: null, action: 'user.link_external', target: { type: 'user', id: byEmail.id }, details: { subject } });
        return byEmail.id;
      }
      const now = nowIso();
      const id = newId('usr');
      await tx
        .insertInto('users')
        .values({ id, email, name: typeof name === 'string' ? name : email.split('@')[0]!, password_hash: null, system_admin: 0, external_subject: subject, created_at: now, updated_at: now })
        .execute();
      await recordAudit(tx, systemActor, { orgId: null, action: 'user.create', target: { type: 'user', id }, details: { email, subject } });
      return id;
    });
  }

  private async syncMembership(orgId: string, userId: string, role: Role | undefined): Promise<void> {
    const current = await this.store.db.selectFrom('memberships').select('role').where('org_id', '=', orgId).where('user_id', '=', userId).executeTakeFirst();
    if (current?.role === role) return;
    await this.store.transaction(async (tx) => {
      const now = nowIso();
      if (!role) await tx.deleteFrom('memberships').where('org_id', '=', orgId).where('user_id', '=', userId).execute();
      else {
        // An upsert: a parallel request of the same user may have made the membership since `current` was read.
        await tx
          .insertInto('memberships')
          .values({ org_id: orgId, user_id: userId, role, created_at: now, updated_at: now })
          .onConflict((oc) => oc.columns(['org_id', 'user_id']).doUpdateSet({ role, updated_at: now }))
          .execute();
      }
      await recordAudit(tx, systemActor, { orgId, action: 'member.sync_external', target: { type: 'user', id: userId }, details: { from: current?.role ?? null, to: role ?? null } });
    });
  }
}

/** The value at a dotted path such as `realm_access.roles`. */
function claimAt(payload: JWTPayload, path: string): unknown {
  return path.split('.').reduce<unknown>((value, part) => (value && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined), payload);
}
