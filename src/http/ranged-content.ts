import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FleetError } from '../core/errors.ts';

/** Stored content to answer a download with. */
export interface DownloadableContent {
  size: number;
  /** Hex SHA-256: the strong ETag, quoted. */
  sha256: string;
  /** For Content-Disposition; made safe here. */
  fileName: string;
  /** The content, or the inclusive byte range of it. */
  open(range?: { start: number; end: number }): Promise<Readable>;
}

/** An inclusive byte range within content of a known size. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The one range a `Range` header asks for (RFC 9110 §14): `bytes=a-b`, `bytes=a-` or `bytes=-n`.
 * Undefined means "send everything": no header, one that is not a single well-formed byte range
 * (a server may ignore those, and several ranges are not served here); 'unsatisfiable' when it
 * starts past the end of the content.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim());
  if (!match) return undefined;
  const [, first, last] = match as unknown as [string, string, string];
  if (first === '') {
    if (last === '') return undefined;
    const length = Number(last);
    if (length === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - length), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}

/** Whether `If-None-Match` names this entity tag (weak comparison) or is `*`. */
function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || trimmed.replace(/^W\//, '') === etag;
  });
}

/**
 * `If-Range` lets a range through only while the content is the one the client has part of: here
 * exactly our strong entity tag. A date (fleetd sends no Last-Modified) or another tag means the
 * whole content is sent.
 */
const rangeStillValid = (header: string | undefined, etag: string) => header === undefined || header.trim() === etag;

const single = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

const safeFileName = (name: string) => name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 200) || 'package.bin';

/**
 * Answers GET or HEAD for stored content: `ETag`, `If-None-Match` (304), one `Range` (206, or 416
 * when it starts past the end), `If-Range`, `Content-Length`, and the bytes streamed from storage
 * with backpressure (Fastify pipes the stream and destroys it when the client goes away). HEAD
 * opens no stream.
 */
export async function sendContent(request: FastifyRequest, reply: FastifyReply, content: DownloadableContent): Promise<FastifyReply> {
  const etag = `"${content.sha256}"`;
  reply.header('etag', etag).header('accept-ranges', 'bytes');
  if (noneMatch(request.headers['if-none-match'], etag)) return reply.status(304).send();
  const header = request.headers.range;
  const range = rangeStillValid(single(request.headers['if-range']), etag) ? parseRange(header, content.size) : undefined;
  if (range === 'unsatisfiable') {
    reply.header('content-range', `bytes */${content.size}`);
    throw new FleetError('range_not_satisfiable', `The range ${header} starts past the end of the content (${content.size} bytes)`);
  }
  reply
    .type('application/octet-stream')
    .header('content-disposition', `attachment; filename="${safeFileName(content.fileName)}"`)
    .header('content-length', String(range ? range.end - range.start + 1 : content.size));
  if (range) reply.status(206).header('content-range', `bytes ${range.start}-${range.end}/${content.size}`);
  if (request.method === 'HEAD') return reply.send();
  return reply.send(await content.open(range));
}
