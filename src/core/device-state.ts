import { FleetError } from './errors.ts';

/**
 * A device's state documents, as AWS IoT keeps its shadows: `reported` is the last known status,
 * built from partial updates; `desired` is what operators asked for; the delta is what of `desired`
 * the device has not reported yet.
 */
export type StateDocument = { [key: string]: StateValue };
export type StateValue = string | number | boolean | null | StateValue[] | StateDocument;

const isDocument = (value: unknown): value is StateDocument => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Deeper than any device status; checked so that a hostile patch cannot exhaust the stack. */
export const maxStateDepth = 32;

/**
 * Applies a partial update: objects merge field by field, anything else (numbers, text, lists)
 * replaces, and `null` removes the field. Returns a new document; neither input changes.
 * A patch nested deeper than maxStateDepth is refused with validation_failed.
 */
export function mergeState(base: StateDocument, patch: StateDocument, depth = 0): StateDocument {
  if (depth >= maxStateDepth) throw new FleetError('validation_failed', `A state document may be nested at most ${maxStateDepth} levels deep`);
  const merged: StateDocument = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else if (Array.isArray(value)) merged[key] = checkedList(value, depth + 1);
    else if (isDocument(value)) {
      const current = merged[key];
      const nested = mergeState(isDocument(current) ? current : {}, value, depth + 1);
      if (Object.keys(nested).length > 0) merged[key] = nested;
      else delete merged[key];
    } else merged[key] = value;
  }
  return merged;
}

/** A list replaces what was there; objects inside it are not merged but are held to the same depth. */
function checkedList(list: StateValue[], depth: number): StateValue[] {
  if (depth >= maxStateDepth) throw new FleetError('validation_failed', `A state document may be nested at most ${maxStateDepth} levels deep`);
  for (const item of list) {
    if (Array.isArray(item)) checkedList(item, depth + 1);
    else if (isDocument(item)) mergeState({}, item, depth + 1);
  }
  return list;
}

/** The fields of `desired` whose value `reported` does not have (compared deeply), or undefined when none. */
export function stateDelta(desired: StateDocument, reported: StateDocument): StateDocument | undefined {
  const delta: StateDocument = {};
  for (const [key, want] of Object.entries(desired)) {
    const have = reported[key];
    if (isDocument(want) && isDocument(have)) {
      const nested = stateDelta(want, have);
      if (nested) delta[key] = nested;
    } else if (!sameValue(want, have)) delta[key] = want;
  }
  return Object.keys(delta).length > 0 ? delta : undefined;
}

/** The fields a patch changed, for telling subscribers only what is new (removed fields as null). */
export function changedFields(before: StateDocument, after: StateDocument): StateDocument | undefined {
  const changes: StateDocument = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const old = before[key];
    const now = after[key];
    if (now === undefined) changes[key] = null;
    else if (isDocument(old) && isDocument(now)) {
      const nested = changedFields(old, now);
      if (nested) changes[key] = nested;
    } else if (!sameValue(old, now)) changes[key] = now;
  }
  return Object.keys(changes).length > 0 ? changes : undefined;
}

function sameValue(a: StateValue | undefined, b: StateValue | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => sameValue(item, b[i]));
  if (isDocument(a) && isDocument(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => sameValue(a[k], b[k]));
  }
  return false;
}
