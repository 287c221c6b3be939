import { FleetError } from '../../core/errors.ts';
import { closeCodes } from '../../hub/socket.ts';

/**
 * Close codes of the device endpoints beyond the shared ones of hub/socket.ts. The two hello codes
 * are Shelly Fleet Manager's (HEAD), so that tools written against it read the same refusals.
 */
export const shellyCloseCodes = {
  helloNotJson: 4100,
  badHello: 4101,
} as const;

export const shellyCloseReasons = {
  helloNotJson: 'hello is not JSON',
  badHello: 'first frame must be NotifyFullStatus or NotifyStatus with src',
  helloTimeout: 'no hello in time',
  denied: 'denied',
  admissionDenied: 'admission denied',
  wrongDevice: 'the key belongs to another device',
} as const;

/** A refusal of admission or attach as a close frame: the WebSocket counterpart of the HTTP status. */
export function closeCodeOf(error: unknown): { code: number; reason: string } {
  if (!(error instanceof FleetError)) return { code: closeCodes.internal, reason: 'internal error' };
  switch (error.code) {
    case 'unauthenticated':
      return { code: closeCodes.unauthenticated, reason: error.message };
    case 'forbidden':
      return { code: closeCodes.forbidden, reason: error.message };
    case 'not_found':
      return { code: closeCodes.notFound, reason: error.message };
    case 'rate_limited':
    case 'unavailable':
      return { code: closeCodes.tryAgainLater, reason: error.message };
    case 'payload_too_large':
      return { code: closeCodes.tooBig, reason: error.message };
    case 'bad_request':
    case 'validation_failed':
    case 'conflict':
      return { code: closeCodes.policy, reason: error.message };
    default:
      return { code: closeCodes.internal, reason: 'internal error' };
  }
}
