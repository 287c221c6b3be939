import type { RrdDefinition } from '../../core/rrd.ts';
import type { RrdState } from '../../core/rrd-archive.ts';
import { decodeState } from './state-encoding.ts';

/** Most definitions kept parsed: sequences mostly share a few (the defaults, a folder's). */
const maxDefinitions = 1000;
const definitions = new Map<string, RrdDefinition>();

/** The archive definition stored as `text` (sequences.rrd); parsed once per distinct text, shared: never change it. */
export function parseDefinition(text: string): RrdDefinition {
  let definition = definitions.get(text);
  if (!definition) {
    if (definitions.size >= maxDefinitions) definitions.clear();
    definitions.set(text, (definition = JSON.parse(text) as RrdDefinition));
  }
  return definition;
}

/**
 * The archive states of sequences as this node last wrote them (sequences.rrd_state), kept parsed so
 * that a batch does not parse again what it wrote itself. An entry is used only while the stored
 * text is still the one it was made from, so what other nodes (or settings changes) write is
 * always read from the store.
 *
 * `take` hands the state out and forgets it: the caller changes it in place and gives it back with
 * `keep` once the new text is committed. A failed write gives nothing back, so no state changed by
 * a rolled back transaction is ever reused. Least recently written entries go first when full.
 */
export class ArchiveStates {
  readonly #entries = new Map<string, { text: string; state: RrdState }>();
  readonly #capacity: number;

  constructor(capacity = 20_000) {
    this.#capacity = capacity;
  }

  /** The state stored as `text` for sequence `id`, the caller's to change. */
  take(id: string, text: string): RrdState {
    const entry = this.#entries.get(id);
    if (entry) {
      this.#entries.delete(id);
      if (entry.text === text) return entry.state;
    }
    return decodeState(text);
  }

  /** Remembers the state of sequence `id` committed as `text`; the caller no longer changes it. */
  keep(id: string, text: string, state: RrdState): void {
    this.#entries.delete(id);
    this.#entries.set(id, { text, state });
    if (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value!);
  }
}
