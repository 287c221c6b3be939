import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { FleetError } from './errors.ts';

const tokenShape = /^[A-Za-z0-9_-]{1,1024}\.[A-Za-z0-9_-]{43}$/;

/**
 * Short-lived credentials that carry their own grant, for clients that cannot send one (a device's
 * plain HTTP download or upload): JSON claims in base64url and their HMAC, keyed by the server secret
 * every node shares and the purpose, so that any node verifies them and a token of one purpose is
 * worth nothing for another. `e` is the expiry, in seconds since the epoch.
 */
export class SignedTokens<Claims extends { e: number }> {
  readonly #key: Buffer;

  constructor(serverSecret: string, purpose: string) {
    this.#key = createHash('sha256').update(`fleetd ${purpose}\0`).update(serverSecret).digest();
  }

  sign(claims: Claims): string {
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${payload}.${this.#mac(payload)}`;
  }

  /** The claims of a token signed here for this purpose that has not expired; 404 with `invalid` otherwise, saying no more. */
  verify(token: string, invalid: string, now = Date.now()): Claims {
    const refusal = new FleetError('not_found', invalid);
    if (!tokenShape.test(token)) throw refusal;
    const [payload, mac] = token.split('.') as [string, string];
    if (!timingSafeEqual(Buffer.from(mac), Buffer.from(this.#mac(payload)))) throw refusal;
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Claims;
    if (claims.e * 1000 <= now) throw refusal;
    return claims;
  }

  #mac(payload: string): string {
    return createHmac('sha256', this.#key).update(payload).digest('base64url');
  }
}
