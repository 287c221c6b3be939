import { errorObject, protocolErrors, type ErrorObject, type JsonRpcId, type Params } from './messages.ts';

/**
 * Reading one incoming text frame: what it is, before anything is dispatched. Requests and
 * notifications come from clients; responses come from devices answering the calls fleetd makes.
 */

export interface RequestMessage {
  kind: 'request';
  id: JsonRpcId;
  method: string;
  params?: Params;
  /** The object as received, for a transport's own members (Shelly's `src`). */
  members: Record<string, unknown>;
}

export interface NotificationMessage {
  kind: 'notification';
  method: string;
  params?: Params;
  members: Record<string, unknown>;
}

export type ResponseMessage =
  | { kind: 'response'; id: JsonRpcId; ok: true; result: unknown; members: Record<string, unknown> }
  | { kind: 'response'; id: JsonRpcId; ok: false; error: ErrorObject; members: Record<string, unknown> };

/**
 * Shaped like a response (no `method`, a `result` or an `error`) but breaking its rules. Kept apart
 * from invalid requests so that a call waiting for this id fails at once instead of timing out.
 */
export interface MalformedResponse {
  kind: 'malformed_response';
  id: JsonRpcId;
  reason: string;
}

/** Not a valid request; `id` is the request's own when it could be read, otherwise null. */
export interface InvalidMessage {
  kind: 'invalid';
  id: JsonRpcId;
  reason: string;
}

export type Message = RequestMessage | NotificationMessage | ResponseMessage | MalformedResponse | InvalidMessage;

export type Frame =
  | { kind: 'single'; message: Message }
  | { kind: 'batch'; messages: Message[] }
  /** The frame as a whole is answered with one error: unparsable, an empty batch, a batch over the limit. */
  | { kind: 'refused'; error: ErrorObject; reason: string };

export interface ParseOptions {
  /** Batches longer than this are refused whole, before any element is looked at. */
  maxBatchSize: number;
  /**
   * Strict JSON-RPC requires `"jsonrpc": "2.0"` on every object. Shelly devices leave it out, so
   * their transport turns this off; a `jsonrpc` member that is present must still say "2.0".
   */
  requireVersion?: boolean;
}

export function parseFrame(text: string, options: ParseOptions): Frame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'refused', error: protocolErrors.parse, reason: 'not valid JSON' };
  }
  if (!Array.isArray(value)) return { kind: 'single', message: classify(value, options) };
  if (value.length === 0) return { kind: 'refused', error: protocolErrors.invalidRequest, reason: 'an empty batch' };
  if (value.length > options.maxBatchSize) {
    const reason = `A batch may hold at most ${options.maxBatchSize} messages; this one holds ${value.length}`;
    return { kind: 'refused', error: errorObject(protocolErrors.invalidRequest.code, protocolErrors.invalidRequest.message, { reason, maxBatchSize: options.maxBatchSize }), reason };
  }
  return { kind: 'batch', messages: value.map((element) => classify(element, options)) };
}

/** One element: the spec's rules on each member, decided on own members only. */
export function classify(value: unknown, options: Pick<ParseOptions, 'requireVersion'> = {}): Message {
  if (!isPlainObject(value)) return invalid(null, Array.isArray(value) ? 'a batch inside a batch' : 'not an object');
  const id = readableId(value);
  const versionProblem = checkVersion(value, options.requireVersion ?? true);
  if (has(value, 'method')) {
    if (versionProblem) return invalid(id, versionProblem);
    return classifyRequest(value, id);
  }
  if (has(value, 'result') || has(value, 'error')) {
    const problem = versionProblem ?? responseProblem(value);
    if (problem) return { kind: 'malformed_response', id, reason: problem };
    return has(value, 'result')
      ? { kind: 'response', id, ok: true, result: own(value, 'result'), members: value }
      : { kind: 'response', id, ok: false, error: own(value, 'error') as ErrorObject, members: value };
  }
  return invalid(id, 'no method');
}

function classifyRequest(value: Record<string, unknown>, id: JsonRpcId): Message {
  const method = own(value, 'method');
  const params = own(value, 'params');
  if (typeof method !== 'string') return invalid(id, 'method is not a string');
  if (has(value, 'params') && !isParams(params)) return invalid(id, 'params is neither an array nor an object');
  const withParams = params === undefined ? {} : { params: params as Params };
  // A notification is a request without an `id` member; `"id": null` is an ordinary request.
  if (!has(value, 'id')) return { kind: 'notification', method, ...withParams, members: value };
  if (!isId(own(value, 'id'))) return invalid(id, 'id is neither a string, a number nor null');
  return { kind: 'request', id, method, ...withParams, members: value };
}

function responseProblem(value: Record<string, unknown>): string | undefined {
  if (!has(value, 'id')) return 'no id';
  if (!isId(own(value, 'id'))) return 'id is neither a string, a number nor null';
  if (has(value, 'result') && has(value, 'error')) return 'both result and error';
  if (has(value, 'error')) {
    const error = own(value, 'error');
    if (!isPlainObject(error)) return 'error is not an object';
    if (!Number.isInteger(own(error, 'code'))) return 'error has no integer code';
    if (typeof own(error, 'message') !== 'string') return 'error has no message';
  }
  return undefined;
}

function checkVersion(value: Record<string, unknown>, required: boolean): string | undefined {
  if (!has(value, 'jsonrpc')) return required ? 'no jsonrpc member' : undefined;
  return own(value, 'jsonrpc') === '2.0' ? undefined : 'jsonrpc is not "2.0"';
}

const invalid = (id: JsonRpcId, reason: string): InvalidMessage => ({ kind: 'invalid', id, reason });

/**
 * Strings, numbers and null are ids. Fractional numbers are allowed (the spec only says they SHOULD
 * be integers) and echoed as read; numbers JSON cannot write back (1e400 reads as Infinity) are not ids.
 * Integers beyond 2^53 lose precision in JavaScript and are echoed rounded.
 */
const isId = (value: unknown): value is JsonRpcId => value === null || typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));

/** The id to answer an invalid message with: its own if well typed, otherwise null. */
function readableId(value: Record<string, unknown>): JsonRpcId {
  const id = own(value, 'id');
  return isId(id) ? id : null;
}

const isParams = (value: unknown): value is Params => Array.isArray(value) || isPlainObject(value);

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

// Own members only, so that nothing is ever read from Object.prototype (or from whatever polluted it).
const has = (value: Record<string, unknown>, member: string): boolean => Object.hasOwn(value, member);
const own = (value: Record<string, unknown>, member: string): unknown => (has(value, member) ? value[member] : undefined);
