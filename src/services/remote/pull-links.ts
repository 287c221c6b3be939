import { SignedTokens } from '../../core/signed-tokens.ts';

/**
 * What a signed pull link grants until `expiresAt` (seconds since the epoch): reading the finished
 * pull's file, or, with `part`, writing that part of its upload (at most `partSize` bytes; a token
 * is signed for each part the upload has), for devices whose uploads carry no credential (RDFM's multipart URLs).
 */
export interface PullGrant {
  pullId: string;
  orgId: string;
  part?: { number: number; partSize: number };
  expiresAt: number;
}

/** Short-lived tokens for file pulls, signed as package links are, with a key of their own. */
export class PullLinks {
  readonly #tokens: SignedTokens<{ p: string; o: string; n?: PullGrant['part']; e: number }>;

  constructor(serverSecret: string) {
    this.#tokens = new SignedTokens(serverSecret, 'file pull links');
  }

  sign(grant: PullGrant): string {
    return this.#tokens.sign({ p: grant.pullId, o: grant.orgId, n: grant.part, e: grant.expiresAt });
  }

  /** The grant of a token this server signed that has not expired; 404 otherwise, saying no more. */
  verify(token: string, now = Date.now()): PullGrant {
    const claims = this.#tokens.verify(token, 'This link is not valid, or has expired', now);
    return { pullId: claims.p, orgId: claims.o, part: claims.n, expiresAt: claims.e };
  }
}
