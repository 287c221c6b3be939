import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { errorCodes, FleetError, type ErrorCode } from '../core/errors.ts';
import { describeErrors } from '../core/validation.ts';

/** Fastify's own error codes for bad requests, in fleetd's words. */
const fastifyCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'bad_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'bad_request',
};

/** Maps any error onto fleetd's one error body: `{"error": {"code", "message", "details"?}}`. */
export function toFleetError(error: FastifyError | FleetError | Error): FleetError {
  if (error instanceof FleetError) return error;
  const fe = error as FastifyError;
  if (fe.validation) {
    const where = fe.validationContext ?? 'request';
    const details = describeErrors(fe.validation as never).map((p) => ({ ...p, in: where }));
    const first = details[0];
    const message = first ? `Invalid ${where}: ${first.field ? `${first.field} ` : ''}${first.message}` : `Invalid ${where}`;
    return new FleetError('validation_failed', message, { details });
  }
  if (error instanceof SyntaxError || fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return new FleetError('bad_request', `Malformed JSON body: ${error.message}`);
  }
  const mapped = fe.code ? fastifyCodes[fe.code] : undefined;
  if (mapped) return new FleetError(mapped, error.message);
  if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500) {
    const code = (Object.keys(errorCodes) as ErrorCode[]).find((c) => errorCodes[c].status === fe.statusCode) ?? 'bad_request';
    return new FleetError(code, error.message);
  }
  return new FleetError('internal', 'Internal server error', { cause: error });
}

export function sendError(error: Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const fleet = toFleetError(error);
  if (fleet.code === 'internal') request.log.error({ err: error }, 'request failed');
  else request.log.info({ code: fleet.code, message: fleet.message }, 'request refused');
  if (fleet.retryAfter !== undefined) reply.header('retry-after', String(fleet.retryAfter));
  const body = { error: { code: fleet.code, message: fleet.message, ...(fleet.details !== undefined && { details: fleet.details }) } };
  return reply.status(fleet.httpStatus).type('application/json').send(body);
}

/**
 * Requests Node's HTTP parser refuses before Fastify sees them (headers too large, malformed, too slow)
 * get the same error body as every other refusal, written straight to the socket, which then closes.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody left to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request headers are too large']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'The request took too long to arrive']
        : [400, 'Malformed HTTP request'];
  const body = JSON.stringify({ error: { code: 'bad_request', message } });
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy(error);
}
