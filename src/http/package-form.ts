import { randomUUID } from 'node:crypto';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Multipart, MultipartFile, MultipartValue } from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import { badRequest, FleetError } from '../core/errors.ts';
import { discardRest } from './discard-rest.ts';
import type { PackageInput } from '../services/packages/package-input.ts';

/**
 * What a package upload form may hold besides the file: version, deviceType, signature, metadata
 * (JSON object text) and up to 100 more fields, each one metadata key. Values are short; a form
 * much larger than its file is refused before it is read.
 */
const formLimits = { fieldSize: 256 * 1024, fieldNameSize: 1024, fields: 110, parts: 111, headerPairs: 20 };
const maxFormOverhead = 1024 * 1024;
const namedFields = new Set(['version', 'deviceType', 'signature', 'metadata']);

/** How a form other than fleetd's own is read (RDFM's). */
export interface PackageFormReading {
  /** The package's description from the text fields, by name in the order sent: fleetd's fields by default. */
  inputOf?: (fields: ReadonlyMap<string, unknown>) => PackageInput;
  /**
   * A folder where the file waits, on disk, until the whole form is read: for clients that send
   * text fields after the file (RDFM's). Without it the file must be the last part.
   */
  spoolDir?: string;
}

/**
 * Reads a package upload (multipart/form-data: text fields, then the `file` part, last) and hands
 * the file to `store` as a stream while it arrives, never whole in memory (with `spoolDir`, the parts
 * come in any order and the file is handed over from disk once the form ended). A form that goes wrong
 * after the file started (a part after it, a malformed body, a client gone) fails the stream, so
 * that `store` removes what it stored and rejects with that error.
 */
export async function receivePackageForm<T>(
  request: FastifyRequest,
  maxPackageSize: number,
  store: (input: PackageInput, content: Readable) => Promise<T>,
  { inputOf = packageInput, spoolDir }: PackageFormReading = {},
): Promise<T> {
  try {
    if (!request.isMultipart()) throw new FleetError('unsupported_media_type', 'Send the package as multipart/form-data: fields version and deviceType, then the file part');
    const declared = Number(request.headers['content-length']);
    if (declared > maxPackageSize + maxFormOverhead) throw tooLarge(maxPackageSize);
    // One byte more than allowed reaches the service, which refuses it (busboy would cut the file short silently).
    const parts = request.parts({ limits: { ...formLimits, fileSize: maxPackageSize + 1 } })[Symbol.asyncIterator]();
    const next = async () => {
      try {
        return await parts.next();
      } catch (error) {
        throw formError(error, maxPackageSize);
      }
    };
    const fields = new Map<string, unknown>();
    for (;;) {
      const { value: part, done } = await next();
      if (done) throw badRequest('The form has no file part: send the fields, then the package as the part named file');
      if (part.type === 'file') {
        if (part.fieldname !== 'file') throw badRequest(`Unexpected file part ${JSON.stringify(part.fieldname.slice(0, 100))}: the package is the part named file`);
        if (spoolDir !== undefined) return await spoolFile(spoolDir, maxPackageSize, part, fields, next, (content) => store(inputOf(fields), content));
        return await storeFile(maxPackageSize, part, inputOf(fields), next, store);
      }
      addField(fields, part);
    }
  } catch (error) {
    discardRest(request.raw);
    throw error;
  }
}

function addField(fields: Map<string, unknown>, part: MultipartValue): void {
  const name = part.fieldname;
  if (part.fieldnameTruncated) throw badRequest('A field name is too long');
  if (name === 'file') throw badRequest('The part named file must be a file (with a filename)');
  if (part.valueTruncated) throw badRequest(`The field ${JSON.stringify(name)} is too long`);
  if (fields.has(name)) throw badRequest(`The field ${JSON.stringify(name)} is given twice`);
  // A part sent as application/json arrives parsed; only metadata may be an object.
  if (typeof part.value !== 'string' && name !== 'metadata') throw badRequest(`The field ${JSON.stringify(name)} must be text`);
  fields.set(name, part.value);
}

/** The fields as the service takes them: named ones, and every other field a metadata key. */
function packageInput(fields: ReadonlyMap<string, unknown>): PackageInput {
  for (const name of ['version', 'deviceType']) {
    if (!fields.has(name)) throw new FleetError('validation_failed', `${name} is required, before the file part`, { details: [{ field: name, message: 'is required' }] });
  }
  const metadata = new Map(Object.entries(metadataField(fields.get('metadata'))));
  for (const [name, value] of fields) {
    if (namedFields.has(name)) continue;
    if (metadata.has(name)) throw badRequest(`The metadata key ${JSON.stringify(name)} is given twice`);
    metadata.set(name, value as string);
  }
  const signature = fields.get('signature') as string | undefined;
  return {
    version: fields.get('version') as string,
    deviceType: fields.get('deviceType') as string,
    metadata: Object.fromEntries(metadata),
    ...(signature !== undefined && { signature }),
  };
}

function metadataField(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw badRequest('The field metadata must be a JSON object of string values');
    }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badRequest('The field metadata must be a JSON object of string values');
  return parsed as Record<string, string>;
}

/**
 * Feeds the file part into the stream the service reads, and ends that stream only once the form
 * ended right after the file: anything after it fails the upload.
 */
async function storeFile<T>(
  maxPackageSize: number,
  part: MultipartFile,
  input: PackageInput,
  next: () => Promise<IteratorResult<Multipart>>,
  store: (input: PackageInput, content: Readable) => Promise<T>,
): Promise<T> {
  const content = new PassThrough();
  const stored = store(input, content);
  const feed = async () => {
    await pipeline(part.file, content, { end: false });
    if (!(await next()).done) throw badRequest('The file must be the last part of the form');
    content.end();
  };
  feed().catch((error: unknown) => content.destroy(formError(error, maxPackageSize)));
  return stored;
}

/**
 * Writes the file part to a temporary file of `spoolDir`, reads the text fields after it, then
 * stores the temporary file (so `inputOf` sees every field). The file is unlinked as soon as it is
 * open, so that even a crash leaves nothing behind (where the system allows it; else it goes at the end).
 */
async function spoolFile<T>(
  spoolDir: string,
  maxPackageSize: number,
  part: MultipartFile,
  fields: Map<string, unknown>,
  next: () => Promise<IteratorResult<Multipart>>,
  store: (content: Readable) => Promise<T>,
): Promise<T> {
  await mkdir(spoolDir, { recursive: true });
  const path = join(spoolDir, `upload-${randomUUID()}`);
  const file = await open(path, 'wx+');
  // Both streams leave the file open for the other; the handle closes once they are destroyed.
  const written = file.createWriteStream({ autoClose: false });
  const read = file.createReadStream({ start: 0, autoClose: false });
  try {
    await rm(path).catch(() => {});
    try {
      await pipeline(part.file, written);
    } catch (error) {
      throw formError(error, maxPackageSize);
    }
    for (;;) {
      const { value: after, done } = await next();
      if (done) break;
      if (after.type === 'file') throw badRequest('The form has more than one file part');
      addField(fields, after);
    }
    return await store(read);
  } finally {
    written.destroy();
    read.destroy();
    await file.close();
    await rm(path, { force: true });
  }
}

const tooLarge = (maxPackageSize: number) => new FleetError('payload_too_large', `A package may have at most ${maxPackageSize} bytes`);

/** What went wrong with the form, in fleetd's words: limits are 413, anything else malformed (400). */
function formError(error: unknown, maxPackageSize: number): FleetError {
  if (error instanceof FleetError) return error;
  const { statusCode, message, code } = error as { statusCode?: number; message?: string; code?: string };
  if (code === 'FST_REQ_FILE_TOO_LARGE') return tooLarge(maxPackageSize);
  if (statusCode === 413) return new FleetError('payload_too_large', `The form is too large: ${message}`);
  return badRequest(`Malformed multipart form: ${message ?? 'unreadable'}`);
}
