import { decodeJwt, type JWTPayload } from 'jose';
import type { Principal } from '../core/access.ts';
import { unauthenticated } from '../core/errors.ts';
import { looksLikeApiKey } from '../core/secrets.ts';
import type { ApiKeys } from './api-keys.ts';
import type { NodeCache } from './node-cache.ts';
import type { OidcTokens } from './oidc.ts';
import type { Sessions } from './sessions.ts';
import type { Throttle } from './throttle.ts';

/** The credentials a request or connection presents, whatever the protocol carried them in. */
export interface Credentials {
  /**
   * The `Authorization` header: `Bearer <token>`, RDFM's `Bearer token=<token>`, or rhizo's
   * `Basic base64(<client version>:<API key>)`.
   */
  authorization?: string;
  sessionCookie?: string;
  csrfHeader?: string;
  unsafeMethod?: boolean;
  ip?: string;
}

/**
 * Turns credentials into a principal: an API key, one of our access tokens, an external OIDC
 * token, or a browser session cookie. A wrong credential counts against the source address;
 * once blocked, further wrong ones are refused with 429 while valid ones still pass. Bearer
 * credentials found good are remembered briefly (see NodeCache); session cookies are not,
 * as each unsafe request must be checked against its CSRF token.
 */
export class Authenticator {
  constructor(
    private readonly apiKeys: ApiKeys,
    private readonly sessions: Sessions,
    private readonly oidc: OidcTokens | undefined,
    private readonly throttle: Throttle,
    private readonly cache: NodeCache<Principal>,
  ) {}

  /** Undefined when no credentials were presented at all. */
  async authenticate(credentials: Credentials): Promise<Principal | undefined> {
    const token = presentedToken(credentials.authorization);
    if (token !== undefined) {
      const cached = this.cache.recall(token);
      if (cached) return cached;
      const generation = this.cache.generation;
      const found = await this.fromToken(token);
      if (!found) return this.refuse(credentials.ip, 'Invalid, expired or revoked credentials');
      this.cache.remember(token, found.principal, generation, found.expiresAt);
      return found.principal;
    }
    if (credentials.sessionCookie) {
      const principal = await this.sessions.principalForCookie(credentials.sessionCookie, credentials.csrfHeader, credentials.unsafeMethod ?? false);
      if (principal) return principal;
      return this.refuse(credentials.ip, 'Session has ended; log in again');
    }
    return undefined;
  }

  private async fromToken(token: string): Promise<{ principal: Principal; expiresAt?: number } | undefined> {
    if (looksLikeApiKey(token)) return this.apiKeys.authenticate(token);
    let claims: JWTPayload;
    try {
      claims = decodeJwt(token);
    } catch {
      return undefined;
    }
    const expiresAt = typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
    const principal = this.oidc?.claims(claims.iss) ? await this.oidc.principal(token) : await this.sessions.principalForAccessToken(token);
    return principal && { principal, expiresAt };
  }

  private async refuse(ip: string | undefined, message: string): Promise<never> {
    const key = `key:${ip ?? 'unknown'}`;
    await this.throttle.assertAllowed(key);
    await this.throttle.recordFailure(key);
    throw unauthenticated(message);
  }
}

function presentedToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const bearer = /^Bearer\s+(?:token=)?(\S+)\s*$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(header);
  if (basic) return basicApiKey(basic[1]!);
  throw unauthenticated('Authorization header must be "Bearer <token>" or "Basic base64(<anything>:<API key>)"');
}

/**
 * rhizo's clients send their key as the Basic password, with their version as the user name (which
 * says nothing about who they are). Only API keys are taken this way: a password is never accepted
 * on a header, so Basic cannot become a way round login throttling.
 */
function basicApiKey(encoded: string): string {
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const key = colon < 0 ? '' : decoded.slice(colon + 1);
  if (!looksLikeApiKey(key)) throw unauthenticated('Basic credentials must carry an API key as the password');
  return key;
}
