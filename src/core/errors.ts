/**
 * The one error type of fleetd. Every layer throws it; each adapter maps it onto its own wire
 * format (HTTP status + `{"error": {...}}`, JSON-RPC error object, WebSocket close code).
 *
 * JSON-RPC codes: bad input takes the spec's -32602 (Invalid params) and unexpected failures its
 * -32603 (Internal error); every other code sits in the range the spec leaves to servers
 * (-32000 to -32099) and mirrors the HTTP status, so that each is distinct and predictable:
 * 4xx gives -32000 - (status - 400), 5xx gives -32050 - (status - 500).
 */
export const errorCodes = {
  bad_request: { status: 400, rpc: -32602 },
  validation_failed: { status: 400, rpc: -32602 },
  unauthenticated: { status: 401, rpc: -32001 },
  forbidden: { status: 403, rpc: -32003 },
  not_found: { status: 404, rpc: -32004 },
  conflict: { status: 409, rpc: -32009 },
  payload_too_large: { status: 413, rpc: -32013 },
  unsupported_media_type: { status: 415, rpc: -32015 },
  /** A byte range that starts past the end of the content (HTTP Range). */
  range_not_satisfiable: { status: 416, rpc: -32016 },
  rate_limited: { status: 429, rpc: -32029 },
  internal: { status: 500, rpc: -32603 },
  /** A device answered a call fleetd made with an error (or with something that is not an answer). */
  device_error: { status: 502, rpc: -32052 },
  unavailable: { status: 503, rpc: -32053 },
  /** A device did not answer a call fleetd made in time. */
  device_timeout: { status: 504, rpc: -32054 },
} as const;

export type ErrorCode = keyof typeof errorCodes;

export class FleetError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;
  /** Seconds a client should wait before trying again (rate limiting, unavailability). */
  readonly retryAfter?: number;

  constructor(code: ErrorCode, message: string, options: { details?: unknown; retryAfter?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'FleetError';
    this.code = code;
    this.details = options.details;
    this.retryAfter = options.retryAfter;
  }

  get httpStatus(): number {
    return errorCodes[this.code].status;
  }

  get rpcCode(): number {
    return errorCodes[this.code].rpc;
  }
}

export const notFound = (what: string) => new FleetError('not_found', `${what} not found`);
export const forbidden = (message = 'You are not allowed to do this') => new FleetError('forbidden', message);
export const unauthenticated = (message = 'Authentication required') => new FleetError('unauthenticated', message);
export const conflict = (message: string, details?: unknown) => new FleetError('conflict', message, { details });
export const badRequest = (message: string, details?: unknown) => new FleetError('bad_request', message, { details });
