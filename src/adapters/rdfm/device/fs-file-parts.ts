import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BlobStore } from '../../../blob/blob-store.ts';
import { badRequest, FleetError } from '../../../core/errors.ts';
import type { Logger } from '../../../log.ts';
import { pullPartKey } from '../../../services/remote/file-pulls.ts';

/** S3's multipart rules, which RDFM's client follows: parts of at least 5 MiB (but the last), at most 10000 of them. */
const minPartSize = 5 * 1024 * 1024;
const maxParts = 10_000;

/** How a file of `size` bytes is cut: the fewest parts S3's rules allow (one for an empty file). */
export function partPlan(size: number): { parts: number; partSize: number } {
  const partSize = Math.max(minPartSize, Math.ceil(size / maxParts));
  return { parts: Math.max(1, Math.ceil(size / partSize)), partSize };
}

/** The URL a device PUTs part `n` to, as RDFM's local storage driver names them; the token is its only credential. */
export const partUrl = (baseUrl: string, pullId: string, n: number, token: string): string =>
  `${baseUrl}/local_storage_multipart/parts/${pullId}.${n}?token=${encodeURIComponent(token)}`;

/**
 * The parts whose ETags the device reports, one after the other, each checked against its ETag
 * (fleetd answers a part with its SHA-256, quoted, as S3 with its MD5): a part missing or not the
 * one the device uploaded breaks the stream off, and with it the upload of the joined file.
 */
export async function* joinedParts(blobs: BlobStore, orgId: string, pullId: string, etags: readonly string[]): AsyncGenerator<Buffer> {
  for (const [i, etag] of etags.entries()) {
    const part = await blobs.getStream(pullPartKey(orgId, pullId, i + 1));
    if (!part) throw badRequest(`part ${i + 1} was not uploaded`);
    const hash = createHash('sha256');
    for await (const chunk of part.stream as Readable) {
      hash.update(chunk as Buffer);
      yield chunk as Buffer;
    }
    if (hash.digest('hex') !== etag.replace(/^(W\/)?"|"$/g, '')) throw badRequest(`part ${i + 1} is not the one its ETag names`);
  }
}

/**
 * Runs a step of a pull the device answers; a reply for a pull that waits for none (timed out,
 * failed already) is dropped, as it came too late, rather than closing the socket.
 */
export async function unlessLate(logger: Logger, pullId: string, step: () => Promise<unknown>): Promise<void> {
  try {
    await step();
  } catch (error) {
    if (!(error instanceof FleetError && error.code === 'conflict')) throw error;
    logger.info({ pullId }, 'an RDFM file reply for a pull that waits for none');
  }
}
