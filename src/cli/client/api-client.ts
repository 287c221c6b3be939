import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ClientSettings } from './settings.ts';

/**
 * The server refused a request, or could not be reached. The CLI prints the message as one line
 * and exits 1 (usage errors, found before any request, exit 2).
 */
export class ApiError extends Error {
  readonly status: number | undefined;
  readonly code: string | undefined;

  constructor(message: string, options: { status?: number; code?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'ApiError';
    this.status = options.status;
    this.code = options.code;
  }
}

export interface RequestOptions {
  /** Sent as JSON. */
  body?: unknown;
  /** Query parameters; an array repeats the parameter, undefined leaves it out. */
  query?: Record<string, string | number | boolean | string[] | undefined>;
}

/** A request body streamed as it is read, with its exact length known beforehand. */
export interface StreamedBody {
  contentType: string;
  contentLength: number;
  stream: AsyncIterable<Uint8Array>;
}

interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Items per request when a command lists everything: the server's largest page. */
const listPageSize = 500;

/** fleetd's REST API as the CLI uses it: JSON in and out, its error body turned into an ApiError. */
export class ApiClient {
  readonly settings: ClientSettings;

  constructor(settings: ClientSettings) {
    this.settings = settings;
  }

  /** `/api/orgs/<org>` followed by `path`, each segment of the organization escaped. */
  orgPath(path: string): string {
    return `/api/orgs/${encodeURIComponent(this.settings.org)}${path}`;
  }

  get<T>(path: string, query?: RequestOptions['query']): Promise<T> {
    return this.request<T>('GET', path, { query });
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  delete(path: string): Promise<void> {
    return this.request<void>('DELETE', path);
  }

  /** Every item of a paginated list, following `nextCursor` to the end. */
  async listAll<T>(path: string, query: RequestOptions['query'] = {}): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.get<Page<T>>(path, { ...query, limit: listPageSize, cursor });
      items.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    return items;
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.settings.key}`, accept: 'application/json' };
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    return this.send<T>(method, this.url(path, options.query), { method, headers, body });
  }

  /**
   * Sends a streamed body (a multipart upload) with node:http, not fetch: fetch reads an iterable
   * body ahead of the socket and so holds all of a large file in memory; a pipe into the request
   * reads no faster than the server takes it.
   */
  async upload<T>(path: string, body: StreamedBody): Promise<T> {
    const url = new URL(this.settings.url + path);
    const headers = {
      authorization: `Bearer ${this.settings.key}`,
      accept: 'application/json',
      'content-type': body.contentType,
      'content-length': String(body.contentLength),
    };
    const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'POST', headers });
    const answered = new Promise<IncomingMessage>((resolve, reject) => {
      request.once('response', resolve);
      request.once('error', reject);
    });
    // A server that refuses (401, 413...) answers before reading everything and closes: its answer
    // is what counts, not the broken pipe that follows, so the pipe's own failure is not awaited.
    pipeline(Readable.from(body.stream), request).catch(() => {});
    let response: IncomingMessage;
    try {
      response = await answered;
    } catch (error) {
      throw this.unreachable(error);
    }
    let text = '';
    for await (const chunk of response.setEncoding('utf8')) text += chunk as string;
    // After an early refusal the rest of the file would wait on a socket the server no longer reads.
    request.destroy();
    return this.parse<T>(response.statusCode ?? 0, text, `POST ${url.pathname}`);
  }

  private url(path: string, query: RequestOptions['query'] = {}): string {
    const url = new URL(this.settings.url + path);
    for (const [name, value] of Object.entries(query)) {
      if (value === undefined) continue;
      for (const one of Array.isArray(value) ? value : [value]) url.searchParams.append(name, String(one));
    }
    return url.toString();
  }

  private async send<T>(method: string, url: string, init: RequestInit): Promise<T> {
    let response: Response;
    try {
      response = await fetch(url, init);
    } catch (error) {
      throw this.unreachable(error);
    }
    return this.parse<T>(response.status, await response.text(), `${method} ${new URL(url).pathname}`);
  }

  /** The answer's JSON, or its error body as an ApiError. */
  private parse<T>(status: number, text: string, what: string): T {
    if (status < 200 || status > 299) throw errorFromResponse(status, text, what);
    if (status === 204 || text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(`${what} answered ${status} with a body that is not JSON: is ${this.settings.url} a fleetd server?`);
    }
  }

  /** No answer at all: fetch puts the system's error code in `cause`, node:http on the error itself. */
  private unreachable(error: unknown): ApiError {
    const failure = error as { code?: string; message?: string; cause?: { code?: string; message?: string } };
    const reason = failure.code ?? failure.cause?.code ?? failure.cause?.message ?? failure.message;
    return new ApiError(`Cannot reach the server at ${this.settings.url}: ${reason}`, { cause: error });
  }
}

/**
 * fleetd's error body `{"error": {"code", "message"}}` as one line; any other body by its status.
 * `what` names the request for a body without a message.
 */
export function errorFromResponse(status: number, text: string, what: string): ApiError {
  let code: string | undefined;
  let message: string | undefined;
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === 'string') code = parsed.error.code;
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
  } catch {
    // Not fleetd's error body (a proxy in between, or not fleetd at all): the status tells what there is.
  }
  const line = (message ?? `${what} failed`).replace(/\s*\n\s*/g, ' ');
  const hint =
    status === 401
      ? ': check the key (--key, FLEETD_KEY or the client config file)'
      : status === 404 && message?.startsWith('No route ')
        ? ': the server does not offer this (is it an older fleetd?)'
        : '';
  return new ApiError(`${line}${hint} (HTTP ${status}${code ? ` ${code}` : ''})`, { status, code });
}
