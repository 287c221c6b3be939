import { badRequest, FleetError } from '../core/errors.ts';
import type { JsonValue } from './bus.ts';

/** What the in-process bus accepts: the default max_payload of a NATS server, so a single node refuses what a cluster would. */
export const defaultMaxPayload = 1024 * 1024;

/** Deeper nesting than any message of fleetd; checked so a hostile value cannot exhaust the stack. */
const maxDepth = 64;

/**
 * The JSON text of `value`, refused unless it is a JSON value that stays the same through JSON:
 * JSON.stringify would otherwise drop functions, turn NaN into null and Dates into text, and throw
 * on BigInts and cycles with messages that do not say where. `undefined` object members are left
 * out, as JSON does; anywhere else it is refused.
 */
export function encodePayload(value: unknown, maxPayload: number, name: 'payload' | 'reply' = 'payload'): string {
  const problem = findNotJson(value, new Set(), 0);
  if (problem) throw badRequest(`${name}${problem.where} is ${problem.what}: bus messages are JSON values (null, boolean, finite number, text, array, plain object)`);
  const text = JSON.stringify(value);
  const bytes = Buffer.byteLength(text);
  if (bytes > maxPayload) {
    throw new FleetError('payload_too_large', `The bus ${name} is ${bytes} bytes, above the limit of ${maxPayload}`, { details: { bytes, maxPayload } });
  }
  return text;
}

export function decodePayload(text: string): JsonValue {
  return JSON.parse(text) as JsonValue;
}

/** Where in `value` (a path such as `.updates.entries[3]`) and what is not a JSON value, or undefined. The path is put together only for a value refused. */
function findNotJson(value: unknown, ancestors: Set<object>, depth: number): { where: string; what: string } | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : { where: '', what: `${String(value)}, not a finite number` };
    case 'object':
      break;
    case 'undefined':
      return { where: '', what: 'undefined' };
    default:
      return { where: '', what: `a ${typeof value}` };
  }
  if (value === null) return undefined;
  if (depth >= maxDepth) return { where: '', what: `nested deeper than ${maxDepth} levels` };
  if (ancestors.has(value)) return { where: '', what: 'a reference to one of its own containers (a cycle)' };
  ancestors.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = findNotJson(value[i], ancestors, depth + 1);
      if (problem) return { where: `[${i}]${problem.where}`, what: problem.what };
    }
  } else {
    const prototype = Object.getPrototypeOf(value) as object | null;
    if (prototype !== Object.prototype && prototype !== null) return { where: '', what: `a ${(value as object).constructor?.name ?? 'class instance'}, not a plain object` };
    for (const key in value) {
      const member = (value as Record<string, unknown>)[key];
      if (member === undefined || !Object.hasOwn(value, key)) continue;
      const problem = findNotJson(member, ancestors, depth + 1);
      if (problem) return { where: `.${key}${problem.where}`, what: problem.what };
    }
  }
  ancestors.delete(value);
  return undefined;
}
