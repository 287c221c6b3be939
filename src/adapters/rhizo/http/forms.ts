import type { FastifyRequest } from 'fastify';
import { badRequest, FleetError } from '../../../core/errors.ts';
import { decodeBase64 } from '../../../core/base64.ts';
import { parseRhizoTimestamp } from '../timestamps.ts';

/**
 * rhizo reads every parameter from Flask's `request.values`: the query string first, then an
 * `application/x-www-form-urlencoded` (or multipart) body. Its client sends form bodies even with
 * GET, which Fastify never parses, so those are read here from the raw request.
 */

/** Most parameters one request may carry; rhizo's requests carry a handful. */
const maxFields = 200;
/** Longest parameter name: rhizo's are short words. */
const maxNameLength = 100;

export interface UploadedFile {
  filename: string;
  content: Buffer;
}

/** Decodes `a=1&b=x+y` strictly: a malformed escape is a bad request, not a value kept as typed. */
export function parseForm(text: string, into = new Map<string, string>()): Map<string, string> {
  if (text === '') return into;
  const pairs = text.split('&');
  if (pairs.length > maxFields) throw badRequest(`At most ${maxFields} parameters are accepted`);
  for (const pair of pairs) {
    if (pair === '') continue;
    const equals = pair.indexOf('=');
    const name = decode(equals < 0 ? pair : pair.slice(0, equals));
    const value = decode(equals < 0 ? '' : pair.slice(equals + 1));
    if (name.length === 0 || name.length > maxNameLength) throw badRequest('A parameter name is empty or too long');
    // Like Werkzeug's MultiDict.get: the first value of a repeated parameter counts.
    if (!into.has(name)) into.set(name, value);
  }
  return into;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    throw badRequest('The parameters are not valid form encoding');
  }
}

const mediaType = (request: FastifyRequest) => (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();

/** Reads a body Fastify left alone (GET, HEAD), up to `limit` bytes. */
async function rawBody(request: FastifyRequest, limit: number): Promise<string> {
  const length = request.headers['content-length'];
  if (length === undefined && request.headers['transfer-encoding'] === undefined) return '';
  if (length !== undefined && Number(length) > limit) throw new FleetError('payload_too_large', `The body is larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request.raw as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new FleetError('payload_too_large', `The body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The parameters of a request as rhizo sees them, with typed readers that refuse bad values with 400. */
export class Params {
  private constructor(
    private readonly values: Map<string, string>,
    /** A multipart `file` part, for creating a file resource. */
    readonly file: UploadedFile | undefined,
  ) {}

  static async of(request: FastifyRequest, bodyLimit: number): Promise<Params> {
    const rawUrl = request.raw.url ?? '';
    const question = rawUrl.indexOf('?');
    const values = parseForm(question < 0 ? '' : rawUrl.slice(question + 1));
    const type = mediaType(request);
    let file: UploadedFile | undefined;
    if (request.method === 'GET' || request.method === 'HEAD') {
      const body = await rawBody(request, bodyLimit);
      if (body !== '') {
        if (type !== 'application/x-www-form-urlencoded') throw badRequest('A request body must be application/x-www-form-urlencoded');
        parseForm(body, values);
      }
    } else if (type === 'multipart/form-data') {
      file = await readMultipart(request, values, bodyLimit);
    } else if (request.body !== null && typeof request.body === 'object') {
      // The plugin's form parser decoded the body with parseForm; the query string comes first, as in Werkzeug.
      for (const [name, value] of Object.entries(request.body as Record<string, string>)) if (!values.has(name)) values.set(name, value);
    }
    return new Params(values, file);
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  /** The first of `names` given (rhizo accepts several spellings of some parameters). */
  string(...names: string[]): string | undefined {
    for (const name of names) {
      const value = this.values.get(name);
      if (value !== undefined) return value;
    }
    return undefined;
  }

  required(name: string): string {
    const value = this.values.get(name);
    if (value === undefined || value === '') throw badRequest(`Parameter ${name} is required`);
    return value;
  }

  /**
   * rhizo tests these with Python truthiness (`meta=0` would count); fleetd takes `0` and `false`
   * as no, which is what every client means by them.
   */
  flag(name: string): boolean {
    const value = this.values.get(name);
    return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
  }

  integer(name: string, min: number, max: number): number | undefined {
    const value = this.values.get(name);
    if (value === undefined || value === '') return undefined;
    if (!/^-?\d{1,16}$/.test(value.trim())) throw badRequest(`Parameter ${name} must be a whole number`);
    const number = Number(value.trim());
    if (number < min || number > max) throw badRequest(`Parameter ${name} must be from ${min} to ${max}`);
    return number;
  }

  requiredInteger(name: string, min: number, max: number): number {
    const value = this.integer(name, min, max);
    if (value === undefined) throw badRequest(`Parameter ${name} is required`);
    return value;
  }

  /** A JSON object sent as a string inside the form (rhizo's `system_attributes`, `values`, ...). */
  json(name: string): Record<string, unknown> | undefined {
    const value = this.values.get(name);
    if (value === undefined || value === '') return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      throw badRequest(`Parameter ${name} is not valid JSON`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw badRequest(`Parameter ${name} must be a JSON object`);
    return parsed as Record<string, unknown>;
  }

  /** A rhizo timestamp, as milliseconds since the epoch. */
  timestamp(...names: string[]): number | undefined {
    const value = this.string(...names);
    if (value === undefined || value === '') return undefined;
    return parseRhizoTimestamp(value);
  }

  /** Base64 content (`data`, or the older `contents`). */
  base64(...names: string[]): Buffer | undefined {
    const value = this.string(...names);
    if (value === undefined) return undefined;
    return decodeBase64(value);
  }
}

async function readMultipart(request: FastifyRequest, values: Map<string, string>, limit: number): Promise<UploadedFile | undefined> {
  let file: UploadedFile | undefined;
  const parts = request.parts({ limits: { fileSize: limit, files: 1, fields: maxFields, fieldNameSize: maxNameLength, fieldSize: limit } });
  try {
    for await (const part of parts) {
      if (part.type === 'file') {
        const content = await part.toBuffer();
        if (part.fieldname === 'file') file = { filename: part.filename, content };
      } else if (!values.has(part.fieldname)) {
        values.set(part.fieldname, typeof part.value === 'string' ? part.value : String(part.value));
      }
    }
  } catch (error) {
    if (error instanceof FleetError) throw error;
    const code = (error as { code?: string }).code;
    if (code === 'FST_REQ_FILE_TOO_LARGE') throw new FleetError('payload_too_large', `A file is larger than ${limit} bytes`);
    throw badRequest(`Malformed multipart body: ${(error as Error).message}`);
  }
  return file;
}

/** As Python's `datetime.isoformat() + 'Z'`: microseconds only when there are some. */
export function rhizoTimestamp(ms: number): string {
  const iso = new Date(ms).toISOString();
  const whole = iso.slice(0, 19);
  return ms % 1000 === 0 ? `${whole}Z` : `${whole}.${iso.slice(20, 23)}000Z`;
}

/** As rhizo's CSV download writes them: `strftime('%Y-%m-%d %H:%M:%S.%f')`. */
export function csvTimestamp(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${iso.slice(20, 23)}000`;
}

/** A fleetd ISO timestamp as rhizo writes timestamps. */
export const rhizoTimestampOf = (iso: string): string => rhizoTimestamp(Date.parse(iso));

/** A not-found that rhizo reports as a bad request (a parent or target named in the parameters). */
export async function orBadRequest<T>(work: () => Promise<T>, message: string): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof FleetError && error.code === 'not_found') throw badRequest(message);
    throw error;
  }
}
