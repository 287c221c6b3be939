import { badRequest } from '../../../core/errors.ts';

// rhizo's parse_json_datetime: ISO-8601 UTC, 'Z' or ' Z', with or without fractional seconds (Python gives 6 digits).
const pattern = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? ?Z$/;

/** Milliseconds since the epoch of a rhizo timestamp; bad_request when it is not one or names no real time. */
export function parseRhizoTimestamp(text: string): number {
  const match = pattern.exec(text);
  if (!match) throw badRequest(`Invalid timestamp ${JSON.stringify(text.slice(0, 40))}: expected ISO-8601 UTC such as 2024-01-02T03:04:05.123Z`);
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC rolls 2024-02-31 over into March: a date that does not come back the same was not a date.
  if (date.getUTCDate() !== day || date.getUTCMonth() !== month - 1 || hour > 23 || minute > 59 || second > 59) {
    throw badRequest(`Invalid timestamp ${JSON.stringify(text)}: no such time`);
  }
  const fraction = match[7] ?? '';
  return date.getTime() + Math.floor(Number(`0.${fraction || '0'}`) * 1000);
}
