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
  checkJsonValue(value, name, new Set(), 0);
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

function checkJsonValue(value: unknown, path: string, ancestors: Set<object>, depth: number): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw notJson(path, `${String(value)}, not a finite number`);
      return;
    case 'object':
      break;
    case 'undefined':
      throw notJson(path, 'undefined');
    default:
      throw notJson(path, `a ${typeof value}`);
  }
  if (value === null) return;
  if (depth >= maxDepth) throw notJson(path, `nested deeper than ${maxDepth} levels`);
  if (ancestors.has(value)) throw notJson(path, 'a reference to one of its own containers (a cycle)');
  ancestors.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkJsonValue(value[i], `${path}[${i}]`, ancestors, depth + 1);
  } else {
    const prototype = Object.getPrototypeOf(value) as object | null;
    if (prototype !== Object.prototype && prototype !== null) throw notJson(path, `a ${(value as object).constructor?.name ?? 'class instance'}, not a plain object`);
    for (const [key, member] of Object.entries(value)) {
      if (member !== undefined) checkJsonValue(member, `${path}.${key}`, ancestors, depth + 1);
    }
  }
  ancestors.delete(value);
}

function notJson(path: string, what: string): FleetError {
  return badRequest(`${path} is ${what}: bus messages are JSON values (null, boolean, finite number, text, array, plain object)`);
}
