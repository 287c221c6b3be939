import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { FleetError } from '../../core/errors.ts';

/** What a signed download link grants: one package of one organization, until `expiresAt`. */
export interface DownloadGrant {
  packageId: string;
  orgId: string;
  /** The device the link was made for, when one asked (recorded, not enforced: links travel). */
  deviceId?: string;
  /** Seconds since the epoch. */
  expiresAt: number;
}

const tokenShape = /^[A-Za-z0-9_-]{1,1024}\.[A-Za-z0-9_-]{43}$/;

/**
 * Short-lived download links for devices, which fetch packages with plain HTTP clients (curl,
 * bootloaders) that cannot send credentials. The link's token is its own credential: the grant,
 * signed with a key derived from the server secret every node shares, so any node serves it.
 */
export class PackageLinks {
  readonly #key: Buffer;

  constructor(serverSecret: string) {
    this.#key = createHash('sha256').update('fleetd package download links\0').update(serverSecret).digest();
  }

  sign(grant: DownloadGrant): string {
    const payload = Buffer.from(JSON.stringify({ p: grant.packageId, o: grant.orgId, d: grant.deviceId, e: grant.expiresAt })).toString('base64url');
    return `${payload}.${this.#mac(payload)}`;
  }

  /** The grant of a token this server signed that has not expired; 404 otherwise, saying no more. */
  verify(token: string, now = Date.now()): DownloadGrant {
    const invalid = new FleetError('not_found', 'This download link is not valid, or has expired');
    if (!tokenShape.test(token)) throw invalid;
    const [payload, mac] = token.split('.') as [string, string];
    if (!timingSafeEqual(Buffer.from(mac), Buffer.from(this.#mac(payload)))) throw invalid;
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { p: string; o: string; d?: string; e: number };
    if (claims.e * 1000 <= now) throw invalid;
    return { packageId: claims.p, orgId: claims.o, deviceId: claims.d, expiresAt: claims.e };
  }

  #mac(payload: string): string {
    return createHmac('sha256', this.#key).update(payload).digest('base64url');
  }
}
