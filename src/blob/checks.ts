import { badRequest, FleetError } from '../core/errors.ts';

/** Longest key accepted: well under S3's 1024-byte limit, so that a bucket prefix still fits. */
export const maxBlobKeyLength = 512;
/** Longest segment: the file name limit of common local file systems. */
const maxSegmentLength = 255;
const segmentPattern = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * Checks a key and returns its segments. Keys come from callers that build them out of ids, but a
 * key becomes a file path (local) or an object name (S3), so anything that could climb out of the
 * store or mean different things to the two implementations is refused here, before any I/O:
 * `..`, absolute paths, backslashes, empty segments, control characters. Segments may not start
 * with a dot, which also keeps keys apart from the local store's temporary files.
 */
export function blobKeySegments(key: string): string[] {
  if (typeof key !== 'string' || key.length === 0 || key.length > maxBlobKeyLength) {
    throw badRequest(`A blob key must have 1 to ${maxBlobKeyLength} characters`);
  }
  const segments = key.split('/');
  for (const segment of segments) {
    if (segment.length > maxSegmentLength || !segmentPattern.test(segment)) {
      throw badRequest('A blob key is made of /-separated segments of letters, digits, ., _ and - (not starting with a dot)', { key: key.slice(0, 100) });
    }
  }
  return segments;
}

/**
 * Checks a byte range (inclusive bounds, as HTTP and S3 count them). A range starting at or past
 * the end of the content is refused by each implementation once the size is known.
 */
export function checkRange(range: { start: number; end?: number }): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
    throw badRequest('A byte range needs integers 0 <= start <= end');
  }
}

export const rangeNotSatisfiable = () => badRequest('The range starts past the end of the content');

/** Errors of the storage itself (disk, network, service) become `unavailable`, keeping the cause for the logs. */
export function storageFailure(operation: string, what: string, cause: unknown): FleetError {
  if (cause instanceof FleetError) return cause;
  return new FleetError('unavailable', `Blob storage failed to ${operation} ${what}`, { cause });
}
