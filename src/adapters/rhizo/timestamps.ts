import { badRequest } from '../../core/errors.ts';

// What rhizo clients send as time inside form bodies and WebSocket messages.

// rhizo's parse_json_datetime: `2024-01-02T03:04:05.123456Z`, `2024-01-02T03:04:05 Z`, UTC only.
const timestampPattern = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? ?Z$/;

/** Milliseconds since the epoch of a rhizo timestamp, in a form body or a WebSocket message; bad_request when it is none. */
export function parseRhizoTimestamp(text: string): number {
  const match = timestampPattern.exec(text.trim());
  if (!match) throw badRequest(`Invalid date/time ${JSON.stringify(text.slice(0, 40))}: expected e.g. 2024-01-02T03:04:05.123Z`);
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = Math.floor(Number(`0.${match[7] ?? '0'}`) * 1000);
  const t = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const back = new Date(t);
  // Date.UTC rolls 2024-02-30 over into March: a date that does not exist is refused instead.
  if (year < 1970 || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59) {
    throw badRequest(`Invalid date/time ${JSON.stringify(text.slice(0, 40))}`);
  }
  return t;
}
