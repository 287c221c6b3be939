import { FleetError } from '../../core/errors.ts';
import { quoted, refuse, type KeyedSession, type SessionContext, type SessionState } from './context.ts';
import { macHexLength } from './session-key.ts';

/** rrdtool's readings: a decimal number (strtod's usual forms), or U for unknown. */
const numberPattern = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * `u k1 v1 [k2 v2 ...] <hmac>`: verifies the MAC over the bytes before the last space with the
 * session's key (which then ratchets), then stores each reading its profile takes at the time the
 * line arrived. Resolves once the values are committed, and the session reads no further line
 * before: a slow store slows the client's socket, never the server's memory.
 */
export async function handleUpdate(state: SessionState, context: SessionContext, line: string): Promise<void> {
  const keyed = state.keyed;
  if (!keyed) throw refuse('update before hello');
  const lastSpace = line.lastIndexOf(' ');
  const mac = line.slice(lastSpace + 1);
  if (mac.length !== macHexLength) throw refuse(`malformed HMAC of ${mac.length} characters`);
  const maced = line.slice(0, lastSpace);
  // The line was read as latin1: these are the bytes the client MACed, whatever they are.
  if (!keyed.key.verify(Buffer.from(maced, 'latin1'), mac)) throw refuse('bad HMAC (tampered, replayed, or a lost line desynchronised the key)');
  if (!(await context.profiles.isCurrent(keyed.client))) throw refuse('the profile changed or was removed since the hello');
  const readings = readingsOf(keyed, pairsOf(maced.slice('u '.length))).flatMap(([name, text]) => {
    const value = numberOf(name, text);
    return value === undefined ? [] : [{ name, value }];
  });
  if (readings.length === 0) return;
  // Two lines within a millisecond would otherwise be one value (the later replacing the earlier).
  const t = Math.max(Date.now(), keyed.lastT + 1);
  const values: Array<{ sequenceId: string; t: number; value: number }> = [];
  for (const { name, value } of readings) values.push({ sequenceId: await sequenceOf(keyed, context, name), t, value });
  const results = await context.series.ingest(values);
  keyed.lastT = t;
  for (const [i, result] of results.entries()) {
    if ('error' in result) throw refuse(`value of ${readings[i]!.name} refused: ${result.error.message}`);
  }
}

/**
 * The key/value pairs of a line's data as Python's `zip` pairs them: a trailing key without value
 * is dropped, a repeated key keeps its last value, an empty key or value (a double space) is an error.
 */
function pairsOf(data: string): Map<string, string> {
  const pairs = new Map<string, string>();
  if (data === '') return pairs;
  const tokens = data.split(' ');
  for (let i = 0; i + 1 < tokens.length; i += 2) {
    const [key, value] = [tokens[i]!, tokens[i + 1]!];
    if (key === '' || value === '') throw refuse('an empty key or value (double space)');
    pairs.set(key, value);
  }
  return pairs;
}

/**
 * What each sequence gets: with data sources, each reads its key (missing → error, as the update
 * template's format would fail; other keys are ignored, as the template ignores them); without,
 * every key is a sequence of its own.
 */
function readingsOf(keyed: KeyedSession, pairs: Map<string, string>): Array<[name: string, text: string]> {
  const { fields } = keyed.client;
  if (fields.length === 0) return [...pairs];
  return fields.map((field) => {
    if ('constant' in field) return [field.source, field.constant];
    const text = pairs.get(field.key);
    if (text === undefined) throw refuse(`update without ${quoted(field.key)}, which data source ${field.source} reads`);
    return [field.source, text];
  });
}

/** The reading as a number; undefined for U (unknown: nothing to store). rrdtool refuses anything else. */
function numberOf(name: string, text: string): number | undefined {
  if (text === 'U') return undefined;
  const value = Number(text);
  if (!numberPattern.test(text) || !Number.isFinite(value)) throw refuse(`value of ${quoted(name)} is not a number: ${quoted(text)}`);
  return value;
}

async function sequenceOf(keyed: KeyedSession, context: SessionContext, name: string): Promise<string> {
  const known = keyed.sequences.get(name);
  if (known !== undefined) return known;
  try {
    const id = await context.profiles.sequenceId(keyed.client, name);
    keyed.sequences.set(name, id);
    return id;
  } catch (error) {
    // A key that cannot name a sequence is the client's error (rrdtool's, upstream); the store's failures are not.
    if (error instanceof FleetError && error.httpStatus < 500) throw refuse(`no sequence for ${quoted(name)}: ${error.message}`);
    throw error;
  }
}
