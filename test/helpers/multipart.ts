import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';

/**
 * multipart/form-data written by hand, streamed: what `curl -F` sends, and also what it never
 * would (parts out of order, broken framing), for tests of the package upload.
 */

export type Part =
  | { name: string; value: string; contentType?: string }
  | { name: string; filename: string; content: Buffer | (() => AsyncIterable<Buffer>); contentType?: string };

export const boundary = `----fleetd-test-${randomBytes(8).toString('hex')}`;
export const formContentType = `multipart/form-data; boundary=${boundary}`;

/** The form's bytes, as a stream that never holds a file part whole (when it comes as a generator). */
export async function* formBody(parts: Part[]): AsyncGenerator<Buffer> {
  for (const part of parts) {
    const disposition = 'filename' in part ? `form-data; name="${part.name}"; filename="${part.filename}"` : `form-data; name="${part.name}"`;
    const type = part.contentType ?? ('filename' in part ? 'application/octet-stream' : undefined);
    yield Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type ? `Content-Type: ${type}\r\n` : ''}\r\n`);
    if ('filename' in part) {
      if (Buffer.isBuffer(part.content)) yield part.content;
      else yield* part.content();
    } else {
      yield Buffer.from(part.value);
    }
    yield Buffer.from('\r\n');
  }
  yield Buffer.from(`--${boundary}--\r\n`);
}

/** `size` bytes of a repeating pattern in 64 KiB chunks, made as they are read. */
export function patternContent(size: number, chunkSize = 64 * 1024): () => AsyncGenerator<Buffer> {
  return async function* () {
    for (let offset = 0; offset < size; offset += chunkSize) yield patternBytes(offset, Math.min(chunkSize, size - offset));
  };
}

/** The bytes `patternContent` gives at `offset`: byte i is (i * 7 + (i >> 16)) mod 256. */
export function patternBytes(offset: number, length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) {
    const at = offset + i;
    bytes[i] = (at * 7 + (at >>> 16)) & 0xff;
  }
  return bytes;
}

export interface PostReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/**
 * POSTs a streamed body (chunked) with node:http. With `abortAfter`, the socket is destroyed once
 * that many bytes were written: a client that goes away in the middle of an upload.
 */
export function postStream(
  url: string,
  body: AsyncIterable<Buffer>,
  options: { token?: string; contentType?: string; headers?: Record<string, string>; abortAfter?: number } = {},
): Promise<PostReply | 'aborted'> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': options.contentType ?? formContentType, ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    const req = httpRequest(url, { method: 'POST', headers });
    let aborted = false;
    req.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        const json = (response.headers['content-type'] ?? '').includes('json') && text;
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: json ? JSON.parse(text) : text });
      });
      response.on('error', reject);
    });
    req.on('error', (error) => (aborted ? resolve('aborted') : reject(error)));
    (async () => {
      let written = 0;
      for await (const chunk of body) {
        if (req.destroyed) return;
        if (options.abortAfter !== undefined && written + chunk.length >= options.abortAfter) {
          req.write(chunk.subarray(0, options.abortAfter - written));
          aborted = true;
          // Let the bytes leave before the socket goes.
          await new Promise((r) => setTimeout(r, 50));
          req.destroy();
          resolve('aborted');
          return;
        }
        written += chunk.length;
        // A server that answered early closes the socket: then no drain comes, and writing stops.
        if (!req.write(chunk)) await new Promise((r) => (req.once('drain', r), req.once('close', r)));
      }
      req.end();
    })().catch(reject);
  });
}
