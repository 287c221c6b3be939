import { webcrypto } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { FleetError, unauthenticated } from '../core/errors.ts';
import { newId, randomToken } from '../core/ids.ts';
import { decoyPasswordHash, sha256, verifyPassword, constantTimeEqual } from '../core/secrets.ts';
import type { Role } from '../core/roles.ts';
import type { Principal } from '../core/access.ts';
import type { Db, Store } from '../store/store.ts';
import { nowIso } from '../store/page.ts';
import { systemActor } from './actor.ts';
import { recordAudit } from './audit.ts';
import type { Throttle } from './throttle.ts';
import { findUserByEmail, toUser, type User } from './users.ts';

export interface SessionSettings {
  accessTokenTtl: number;
  refreshTokenTtl: number;
  /** Signs access tokens; from the configuration, or generated once and kept in the store. */
  jwtSecret: string;
}

export interface Tokens {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  refreshToken: string;
  refreshExpiresIn: number;
  sessionId: string;
  /** For browser sessions: the value the X-CSRF-Token header must carry. */
  csrfToken?: string;
  user: User;
}

export interface ClientInfo {
  ip?: string;
  userAgent?: string;
  requestId?: string;
}

const issuer = 'fleetd';
const audience = 'fleetd';
/** Device access tokens have an audience of their own, so that neither kind passes for the other. */
const deviceAudience = 'fleetd-device';

/** The secret that signs access tokens: one per cluster, created by whichever node starts first. */
export async function loadJwtSecret(db: Db, configured: string): Promise<string> {
  if (configured) return configured;
  await db.insertInto('settings').values({ key: 'jwt_secret', value: randomToken(48) }).onConflict((oc) => oc.column('key').doNothing()).execute();
  const row = await db.selectFrom('settings').select('value').where('key', '=', 'jwt_secret').executeTakeFirstOrThrow();
  return row.value;
}

async function revokeSession(db: Db, sessionId: string): Promise<void> {
  await db.updateTable('sessions').set({ revoked_at: nowIso() }).where('id', '=', sessionId).where('revoked_at', 'is', null).execute();
}

/** Logins, refresh-token rotation, logout, and the principal behind an access token or session cookie. */
export class Sessions {
  /** Imported once: given raw bytes, jose imports the key anew for every token it signs or checks. */
  private readonly key: Promise<webcrypto.CryptoKey>;

  constructor(
    private readonly store: Store,
    private readonly settings: SessionSettings,
    private readonly throttle: Throttle,
  ) {
    this.key = webcrypto.subtle.importKey('raw', new TextEncoder().encode(settings.jwtSecret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    this.key.catch(() => {}); // a failure surfaces where the key is used
  }

  async login(email: string, password: string, client: ClientInfo, options: { browser?: boolean } = {}): Promise<Tokens> {
    const throttleKey = `login:${client.ip ?? 'unknown'}`;
    await this.throttle.assertAllowed(throttleKey);
    const row = await findUserByEmail(this.store.db, email);
    const ok = await verifyPassword(row?.password_hash ?? (await decoyPasswordHash), password);
    if (!row || !row.password_hash || !ok) {
      const blocked = await this.throttle.recordFailure(throttleKey);
      if (blocked) await this.throttle.assertAllowed(throttleKey);
      throw unauthenticated('Wrong email or password');
    }
    const refreshToken = randomToken(32);
    const csrfToken = options.browser ? randomToken(24) : undefined;
    const now = Date.now();
    const sessionId = newId('ses', now);
    await this.store.transaction(async (tx) => {
      await tx
        .insertInto('sessions')
        .values({
          id: sessionId,
          user_id: row.id,
          refresh_hash: sha256(refreshToken),
          previous_refresh_hash: null,
          csrf_hash: csrfToken ? sha256(csrfToken) : null,
          created_at: nowIso(now),
          expires_at: nowIso(now + this.settings.refreshTokenTtl * 1000),
          last_used_at: nowIso(now),
          revoked_at: null,
          ip: client.ip ?? null,
          user_agent: client.userAgent?.slice(0, 300) ?? null,
        })
        .execute();
      const principal = { kind: 'user', userId: row.id, systemAdmin: false, orgRoles: new Map(), via: 'token' } as const;
      await recordAudit(tx, { principal, ip: client.ip, requestId: client.requestId }, { orgId: null, action: 'auth.login', target: { type: 'session', id: sessionId }, details: { browser: Boolean(csrfToken) } });
    });
    return { ...(await this.issue(row.id, sessionId, refreshToken, this.settings.refreshTokenTtl)), csrfToken, user: toUser(row) };
  }

  /**
   * Trades a refresh token for a new access token and a new refresh token. Presenting a refresh
   * token that was already traded means it leaked: the whole session is revoked.
   */
  async refresh(refreshToken: string, client: ClientInfo): Promise<Tokens> {
    const hash = sha256(refreshToken);
    const session = await this.store.db.selectFrom('sessions').selectAll().where('refresh_hash', '=', hash).executeTakeFirst();
    if (!session) {
      const replayed = await this.store.db.selectFrom('sessions').select('id').where('previous_refresh_hash', '=', hash).executeTakeFirst();
      if (replayed) {
        await this.store.transaction(async (tx) => {
          await revokeSession(tx, replayed.id);
          await recordAudit(tx, { principal: systemActor.principal, ip: client.ip, requestId: client.requestId }, { orgId: null, action: 'auth.refresh_reuse', target: { type: 'session', id: replayed.id } });
        });
      }
      // Like a wrong API key: counted, and refused with 429 while the address is blocked.
      const throttleKey = `key:${client.ip ?? 'unknown'}`;
      await this.throttle.assertAllowed(throttleKey);
      await this.throttle.recordFailure(throttleKey);
      throw unauthenticated('Refresh token is not valid');
    }
    if (session.revoked_at !== null || Date.parse(session.expires_at) <= Date.now()) throw unauthenticated('Session has ended; log in again');
    const next = randomToken(32);
    const rotated = await this.store.db
      .updateTable('sessions')
      .set({ refresh_hash: sha256(next), previous_refresh_hash: hash, last_used_at: nowIso() })
      .where('id', '=', session.id)
      .where('refresh_hash', '=', hash)
      .executeTakeFirst();
    // Two refreshes racing with the same token: only one wins.
    if (rotated.numUpdatedRows === 0n) throw unauthenticated('Refresh token is not valid');
    const user = await this.store.db.selectFrom('users').selectAll().where('id', '=', session.user_id).executeTakeFirstOrThrow();
    const remaining = Math.floor((Date.parse(session.expires_at) - Date.now()) / 1000);
    return { ...(await this.issue(session.user_id, session.id, next, remaining)), user: toUser(user) };
  }

  async logout(principal: Principal, client: ClientInfo): Promise<void> {
    if (principal.kind !== 'user' || !principal.sessionId) throw new FleetError('bad_request', 'Only a login session can log out; API keys are revoked instead');
    const sessionId = principal.sessionId;
    await this.store.transaction(async (tx) => {
      await revokeSession(tx, sessionId);
      await recordAudit(tx, { principal, ip: client.ip, requestId: client.requestId }, { orgId: null, action: 'auth.logout', target: { type: 'session', id: sessionId } });
    });
  }

  /**
   * A short-lived access token for a device that proved itself (a signed check-in): it acts as the
   * device, and stops working when the device is deleted.
   */
  async deviceAccessToken(device: { id: string; orgId: string }): Promise<{ accessToken: string; expiresIn: number }> {
    const expiresIn = this.settings.accessTokenTtl;
    const accessToken = await new SignJWT({ org: device.orgId })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(device.id)
      .setIssuer(issuer)
      .setAudience(deviceAudience)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn)
      .sign(await this.key);
    return { accessToken, expiresIn };
  }

  /** The user or device behind one of our access tokens, or undefined when the token is not ours or not valid. */
  async principalForAccessToken(token: string): Promise<Principal | undefined> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, await this.key, { issuer, audience: [audience, deviceAudience], algorithms: ['HS256'] }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw unauthenticated('Access token has expired; refresh it');
      return undefined;
    }
    if (payload.aud === deviceAudience) {
      if (typeof payload.sub !== 'string' || typeof payload.org !== 'string') return undefined;
      const device = await this.store.db.selectFrom('devices').select('id').where('id', '=', payload.sub).where('org_id', '=', payload.org).executeTakeFirst();
      return device && { kind: 'device', deviceId: device.id, orgId: payload.org, keyId: 'token' };
    }
    if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') return undefined;
    const session = await this.store.db.selectFrom('sessions').select(['revoked_at', 'expires_at']).where('id', '=', payload.sid).executeTakeFirst();
    if (!session || session.revoked_at !== null || Date.parse(session.expires_at) <= Date.now()) return undefined;
    return this.principalForUser(payload.sub, { sessionId: payload.sid, via: 'token' });
  }

  /** The user behind a browser session cookie; unsafe methods must echo the CSRF token. */
  async principalForCookie(cookie: string, csrfHeader: string | undefined, unsafeMethod: boolean): Promise<Principal | undefined> {
    const session = await this.store.db.selectFrom('sessions').selectAll().where('refresh_hash', '=', sha256(cookie)).executeTakeFirst();
    if (!session || session.revoked_at !== null || Date.parse(session.expires_at) <= Date.now() || session.csrf_hash === null) return undefined;
    if (unsafeMethod && !(csrfHeader && constantTimeEqual(session.csrf_hash, sha256(csrfHeader)))) {
      throw new FleetError('forbidden', 'Missing or wrong X-CSRF-Token header for a cookie-authenticated request');
    }
    return this.principalForUser(session.user_id, { sessionId: session.id, via: 'cookie' });
  }

  async principalForUser(userId: string, how: { sessionId?: string; via: 'token' | 'cookie' | 'oidc' }): Promise<Principal | undefined> {
    const user = await this.store.db.selectFrom('users').select(['id', 'system_admin']).where('id', '=', userId).executeTakeFirst();
    if (!user) return undefined;
    const memberships = await this.store.db.selectFrom('memberships').select(['org_id', 'role']).where('user_id', '=', userId).execute();
    return {
      kind: 'user',
      userId,
      systemAdmin: user.system_admin === 1,
      orgRoles: new Map(memberships.map((m) => [m.org_id, m.role as Role])),
      sessionId: how.sessionId,
      via: how.via,
    };
  }

  /**
   * Signs an access token for the session; `refreshExpiresIn` is what remains of the session,
   * which no access token outlives.
   */
  private async issue(userId: string, sessionId: string, refreshToken: string, refreshExpiresIn: number) {
    const expiresIn = Math.min(this.settings.accessTokenTtl, refreshExpiresIn);
    const accessToken = await new SignJWT({ sid: sessionId })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(userId)
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn)
      .sign(await this.key);
    return {
      accessToken,
      tokenType: 'Bearer' as const,
      expiresIn,
      refreshToken,
      refreshExpiresIn,
      sessionId,
    };
  }
}
