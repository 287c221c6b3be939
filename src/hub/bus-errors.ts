import { badRequest, FleetError } from '../core/errors.ts';
import type { RequestOptions } from './bus.ts';

/**
 * The ways a request or publish is turned down for reasons of the bus rather than of the caller.
 * All are `unavailable`; `details.reason` tells them apart for callers that care.
 */
export const busClosed = () => new FleetError('unavailable', 'The message bus is closed', { details: { reason: 'closed' } });

export const busDisconnected = () =>
  new FleetError('unavailable', 'The message bus lost its server and is reconnecting', { details: { reason: 'disconnected' }, retryAfter: 1 });

export const noResponders = (subject: string) =>
  new FleetError('unavailable', `Nobody is listening on ${subject}`, { details: { reason: 'no_responders', subject } });

export const noReplyInTime = (subject: string, timeoutMs: number) =>
  new FleetError('unavailable', `No reply on ${subject} within ${timeoutMs} ms`, { details: { reason: 'timeout', subject, timeoutMs } });

/** Longest wait a timer can express (setTimeout wraps around above it). */
const maxTimeoutMs = 2 ** 31 - 1;

export function checkRequestOptions(options: RequestOptions): void {
  const timeoutMs = options?.timeoutMs;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > maxTimeoutMs) {
    throw badRequest(`A bus request needs timeoutMs, a whole number of milliseconds from 1 to ${maxTimeoutMs}`);
  }
}
