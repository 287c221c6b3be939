import type { FleetError } from '../../core/errors.ts';

/**
 * The JSON-RPC 2.0 wire objects and their builders. Transports may add members of their own to
 * what these build (Shelly frames carry `src` and `dst`); the spec does not forbid extra members.
 */

export type JsonRpcId = string | number | null;

/** By position or by name; the spec allows nothing else. */
export type Params = unknown[] | Record<string, unknown>;

export interface ErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

export interface RequestObject {
  jsonrpc: '2.0';
  method: string;
  params?: Params;
  id: JsonRpcId;
}

export interface SuccessResponse {
  jsonrpc: '2.0';
  result: unknown;
  id: JsonRpcId;
}

export interface ErrorResponse {
  jsonrpc: '2.0';
  error: ErrorObject;
  id: JsonRpcId;
}

export type Response = SuccessResponse | ErrorResponse;

/**
 * The spec's own errors about the protocol itself, with its canonical messages. Errors about what a
 * method does (invalid params, refusals, failures) are FleetErrors, mapped by `errorObjectOf`.
 */
export const protocolErrors = {
  parse: { code: -32700, message: 'Parse error' },
  invalidRequest: { code: -32600, message: 'Invalid Request' },
  methodNotFound: { code: -32601, message: 'Method not found' },
} as const satisfies Record<string, ErrorObject>;

export const requestObject = (id: JsonRpcId, method: string, params?: Params): RequestObject =>
  params === undefined ? { jsonrpc: '2.0', method, id } : { jsonrpc: '2.0', method, params, id };

/** `result` must be present on success, so a handler's `undefined` goes out as `null`. */
export const successResponse = (id: JsonRpcId, result: unknown): SuccessResponse => ({ jsonrpc: '2.0', result: result ?? null, id });

export const errorResponse = (id: JsonRpcId, error: ErrorObject): ErrorResponse => ({ jsonrpc: '2.0', error, id });

export const errorObject = (code: number, message: string, data?: unknown): ErrorObject => (data === undefined ? { code, message } : { code, message, data });

/** The JSON-RPC code of a FleetError comes from `errorCodes`, the one table of error codes. */
export const errorObjectOf = (error: FleetError): ErrorObject => errorObject(error.rpcCode, error.message, error.details);
