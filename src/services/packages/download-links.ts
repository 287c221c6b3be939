import { SignedTokens } from '../../core/signed-tokens.ts';

/** What a signed download link grants: one package of one organization, until `expiresAt`. */
export interface DownloadGrant {
  packageId: string;
  orgId: string;
  /** The device the link was made for, when one asked (recorded, not enforced: links travel). */
  deviceId?: string;
  /** Seconds since the epoch. */
  expiresAt: number;
}

/**
 * Short-lived download links for devices, which fetch packages with plain HTTP clients (curl,
 * bootloaders) that cannot send credentials: the link's token is its own credential, served by any node.
 */
export class PackageLinks {
  readonly #tokens: SignedTokens<{ p: string; o: string; d?: string; e: number }>;

  constructor(serverSecret: string) {
    this.#tokens = new SignedTokens(serverSecret, 'package download links');
  }

  sign(grant: DownloadGrant): string {
    return this.#tokens.sign({ p: grant.packageId, o: grant.orgId, d: grant.deviceId, e: grant.expiresAt });
  }

  /** The grant of a token this server signed that has not expired; 404 otherwise, saying no more. */
  verify(token: string, now = Date.now()): DownloadGrant {
    const claims = this.#tokens.verify(token, 'This download link is not valid, or has expired', now);
    return { packageId: claims.p, orgId: claims.o, deviceId: claims.d, expiresAt: claims.e };
  }
}
