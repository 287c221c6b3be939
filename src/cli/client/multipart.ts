import { randomBytes } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { StreamedBody } from './api-client.ts';

/** A file sent as the last part of a form, read from disk as the request goes out. */
export interface FilePart {
  field: string;
  path: string;
  /** Called with the byte count of each chunk of the file once it is handed to the request. */
  onChunk?: (bytes: number) => void;
}

/** Quotes, CR and LF would end a header parameter early: percent-encode them, as browsers do. */
const headerParameter = (value: string) => value.replace(/["\r\n]/g, (c) => encodeURIComponent(c));

/**
 * A multipart/form-data body of text fields then one file, as a stream with its exact length. The
 * file part comes last because the server reads the text fields before it streams the file.
 */
export function multipartBody(fields: Record<string, string>, file: FilePart): StreamedBody & { fileSize: number } {
  const boundary = `fleetd-${randomBytes(16).toString('hex')}`;
  const textParts = Object.entries(fields).map(
    ([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${headerParameter(name)}"\r\n\r\n${value}\r\n`,
  );
  const head = Buffer.from(
    `${textParts.join('')}--${boundary}\r\nContent-Disposition: form-data; name="${headerParameter(file.field)}"; filename="${headerParameter(basename(file.path))}"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const fileSize = statSync(file.path).size;
  async function* parts(): AsyncGenerator<Uint8Array> {
    yield head;
    for await (const chunk of createReadStream(file.path)) {
      yield chunk as Buffer;
      file.onChunk?.((chunk as Buffer).length);
    }
    yield tail;
  }
  return { contentType: `multipart/form-data; boundary=${boundary}`, contentLength: head.length + fileSize + tail.length, stream: parts(), fileSize };
}
