import { CompiledQuery } from 'kysely';
import type { RrdState } from '../../core/rrd-archive.ts';
import type { RrdDefinition } from '../../core/rrd.ts';
import type { Database } from '../../store/schema.ts';
import type { Db, Store } from '../../store/store.ts';
import { NodeCache } from '../node-cache.ts';
import { decodeState } from './state-encoding.ts';

/** Most definitions kept parsed: sequences mostly share a few (the defaults, a folder's). */
const maxDefinitions = 1000;
const definitions = new Map<string, RrdDefinition>();

/** The archive definition stored as `text` (sequences.rrd); parsed once per distinct text, shared: never change it. */
function parseDefinition(text: string): RrdDefinition {
  let definition = definitions.get(text);
  if (!definition) {
    if (definitions.size >= maxDefinitions) definitions.clear();
    definitions.set(text, (definition = JSON.parse(text) as RrdDefinition));
  }
  return definition;
}

/**
 * What an ingest batch needs of one sequence, as its row stood at `revision`. A batch changes the
 * last value, the storage time and the archive state in place.
 */
export interface SequenceHead {
  id: string;
  orgId: string;
  dataType: Database['sequences']['data_type'];
  /** Seconds; 0 stores every value. */
  minStorageInterval: number;
  lastStoredT: number | null;
  lastT: number | null;
  lastNum: number | null;
  lastText: string | null;
  lastBlobKey: string | null;
  definition: RrdDefinition | null;
  /** The archive state, null until a value first reaches the archives. */
  state: RrdState | null;
  /** The state as stored (sequences.rrd_state). */
  stateText: string | null;
  revision: number;
  /** Full path, `/<org slug>/...`, and the folder holding the sequence. */
  path: string;
  folderId: string;
  /** When the row was read (ms): a head is re-read after the node's cache TTL, so that renames on other nodes reach it. */
  readAt: number;
}

/**
 * The sequences a node writes to, kept between ingest batches so that a batch of a device's usual
 * sequences reads nothing before writing. A head is used only while it is right: every write of a
 * batch names the revision it was made from, and a row whose revision moved on (another node's
 * values, changed settings) or whose resource was deleted is not written, which fails the batch;
 * it is then written again from rows read afresh. Any commit through the store on this node (a
 * rename, a move) forgets every head, and a head read more than `ttlMs` ago is read again, so
 * paths renamed on another node reach this one as every node cache's data does.
 */
export class SequenceHeads {
  readonly #cache: NodeCache<SequenceHead>;
  readonly #ttlMs: number;

  constructor(options: { store: Pick<Store, 'onCommit'>; ttlMs: number; maxEntries?: number }) {
    this.#ttlMs = options.ttlMs;
    this.#cache = new NodeCache<SequenceHead>(options.ttlMs, options.maxEntries ?? 20_000);
    options.store.onCommit(() => this.#cache.invalidate());
  }

  /** The generation a batch starts in: pass it to `keep`. */
  get generation(): number {
    return this.#cache.generation;
  }

  /** The heads known of `ids`, the batch's to change, and the ids to read. */
  recall(ids: readonly string[], now = Date.now()): { heads: Map<string, SequenceHead>; missing: string[] } {
    const heads = new Map<string, SequenceHead>();
    const missing: string[] = [];
    for (const id of ids) {
      const head = this.#cache.recall(id, now);
      if (head) heads.set(id, head);
      else missing.push(id);
    }
    return { heads, missing };
  }

  /** Keeps the heads a batch committed (their revision raised), unless something was committed in between. */
  keep(heads: Iterable<SequenceHead>, generation: number): void {
    for (const head of heads) this.#cache.remember(head.id, head, generation, head.readAt + this.#ttlMs);
  }

  /** Forgets every head: after a batch that failed, whose heads may be half changed. */
  forget(): void {
    this.#cache.invalidate();
  }
}

type HeadRow = Pick<
  Database['sequences'],
  'resource_id' | 'org_id' | 'data_type' | 'min_storage_interval' | 'last_stored_t' | 'last_t' | 'last_num' | 'last_text' | 'last_blob_key' | 'rrd' | 'rrd_state' | 'revision'
> & { path: string; parent_id: string | null; slug: string };

const headQuery =
  'select s.resource_id, s.org_id, s.data_type, s.min_storage_interval, s.last_stored_t, s.last_t, s.last_num, s.last_text, s.last_blob_key, s.rrd, s.rrd_state, s.revision, r.path, r.parent_id, o.slug' +
  ' from sequences s join resources r on r.id = s.resource_id join organizations o on o.id = s.org_id where r.deleted = 0 and s.resource_id';
// One statement text whatever the number of ids, so that it stays prepared.
const sqliteHeads = `${headQuery} in (select value from json_each(?))`;
const postgresHeads = `${headQuery} = any($1::text[])`;

/** The heads of the live sequences among `ids`, read in `tx`. */
export async function readHeads(tx: Db, kind: Store['kind'], ids: readonly string[], now = Date.now()): Promise<SequenceHead[]> {
  if (ids.length === 0) return [];
  const query = kind === 'postgres' ? CompiledQuery.raw(postgresHeads, [ids]) : CompiledQuery.raw(sqliteHeads, [JSON.stringify(ids)]);
  return (await tx.executeQuery<HeadRow>(query)).rows.map((row) => ({
    id: row.resource_id,
    orgId: row.org_id,
    dataType: row.data_type,
    minStorageInterval: row.min_storage_interval,
    lastStoredT: row.last_stored_t,
    lastT: row.last_t,
    lastNum: row.last_num,
    lastText: row.last_text,
    lastBlobKey: row.last_blob_key,
    definition: row.rrd === null ? null : parseDefinition(row.rrd),
    state: row.rrd_state === null ? null : decodeState(row.rrd_state),
    stateText: row.rrd_state,
    revision: row.revision,
    path: `/${row.slug}${row.path}`,
    folderId: row.parent_id ?? '',
    readAt: now,
  }));
}
