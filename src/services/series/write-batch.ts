import { CompiledQuery } from 'kysely';
import type { BlobStore } from '../../blob/blob-store.ts';
import { badRequest, FleetError, notFound } from '../../core/errors.ts';
import { createRrdState, updateRrd, type RrdState } from '../../core/rrd-archive.ts';
import type { Database } from '../../store/schema.ts';
import type { Db, Store } from '../../store/store.ts';
import { parseDefinition, type ArchiveStates } from './archive-states.ts';
import { writeBatchRows, type ArchiveRow, type BatchRows, type SequenceState, type ValueRow } from './batch-writes.ts';
import { encodeState } from './state-encoding.ts';

export interface IngestValue {
  sequenceId: string;
  /** Milliseconds since the epoch. */
  t: number;
  value: number | string | Buffer;
}

export type IngestResult = { stored: boolean } | { error: FleetError };

// Shared by every value of every batch: results are read, never changed.
const storedResult: IngestResult = Object.freeze({ stored: true });
const skippedResult: IngestResult = Object.freeze({ stored: false });

/** A value as it was committed, for whoever tells clients of new values. */
export interface CommittedValue {
  orgId: string;
  sequenceId: string;
  /** Full path, `/<org slug>/...`. */
  path: string;
  folderId: string;
  t: number;
  /** Null for images. */
  value: number | string | null;
  /** False when min_storage_interval kept it out of the history (it still is the last value). */
  stored: boolean;
}

export interface WriteBatchDeps {
  store: Store;
  blobs: BlobStore;
  blobThreshold: number;
  /** This node's archive states, kept parsed between batches. */
  states: ArchiveStates;
}

type SequenceColumn = 'resource_id' | 'org_id' | 'data_type' | 'min_storage_interval' | 'last_stored_t' | 'last_t' | 'last_num' | 'last_text' | 'last_blob_key' | 'rrd' | 'rrd_state';
type SequenceRow = Pick<Database['sequences'], SequenceColumn> & { path: string; parent_id: string | null; slug: string };
type Coerced = number | string | Buffer;

const idPattern = /^[A-Za-z0-9_-]{1,100}$/;

/** Where an image value too large for the database is kept: one key per (sequence, time), as the value itself. */
const imageBlobKey = (sequenceId: string, t: number) => `seq/${sequenceId}/${t}`;

/** The value as the sequence's type keeps it (numbers and text are accepted for each other where they convert), or why not. */
function coerce(dataType: SequenceRow['data_type'], value: unknown): Coerced | FleetError {
  switch (dataType) {
    case 'numeric': {
      const number = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
      return Number.isFinite(number) ? number : badRequest('A numeric sequence takes finite numbers');
    }
    case 'text':
      return typeof value === 'string' ? value : typeof value === 'number' && Number.isFinite(value) ? String(value) : badRequest('A text sequence takes text');
    case 'image':
      return Buffer.isBuffer(value) ? value : badRequest('An image sequence takes binary content');
  }
}

const sequenceQuery =
  'select s.resource_id, s.org_id, s.data_type, s.min_storage_interval, s.last_stored_t, s.last_t, s.last_num, s.last_text, s.last_blob_key, s.rrd, s.rrd_state, r.path, r.parent_id, o.slug' +
  ' from sequences s join resources r on r.id = s.resource_id join organizations o on o.id = s.org_id where r.deleted = 0 and s.resource_id';
// One statement text whatever the number of ids, so that it stays prepared. PostgreSQL locks the rows
// against another node's batch updating the same archives, in one order so that two batches cannot deadlock.
const sqliteSequences = `${sequenceQuery} in (select value from json_each(?))`;
const postgresSequences = `${sequenceQuery} = any($1::text[]) order by s.resource_id for update of s`;

/** The batch's sequences, live ones only, with what writing values needs. */
async function readSequences(tx: Db, kind: Store['kind'], ids: string[]): Promise<Map<string, SequenceRow>> {
  const query = kind === 'postgres' ? CompiledQuery.raw(postgresSequences, [ids]) : CompiledQuery.raw(sqliteSequences, [JSON.stringify(ids)]);
  const rows = new Map<string, SequenceRow>();
  for (const row of (await tx.executeQuery<SequenceRow>(query)).rows) rows.set(row.resource_id, row);
  return rows;
}

/** Uploads the images too large for the database before the transaction, so that it never waits on blob storage. */
async function uploadLargeImages(deps: WriteBatchDeps, values: IngestValue[]): Promise<Map<number, string>> {
  const keys = new Map<number, string>();
  await Promise.all(
    values.map(async (v, index) => {
      if (!Buffer.isBuffer(v.value) || v.value.length < deps.blobThreshold || !idPattern.test(v.sequenceId) || !Number.isSafeInteger(v.t)) return;
      const key = imageBlobKey(v.sequenceId, v.t);
      await deps.blobs.put(key, v.value);
      keys.set(index, key);
    }),
  );
  return keys;
}

interface BatchOutcome extends BatchRows {
  results: IngestResult[];
  committed: CommittedValue[];
  /** Archive states taken from `states`, with the text they are stored as once committed. */
  states: Array<{ id: string; text: string; state: RrdState }>;
}

/**
 * Applies one sequence's values of the batch in time order: min_storage_interval, the archives
 * (a time not after their last update leaves them as they are, the value is stored all the same),
 * the last value. Adds the rows to write and the results; returns the sequence's new state.
 */
function applySequence(row: SequenceRow, entries: Array<{ index: number; t: number; value: Coerced }>, blobKeys: Map<number, string>, states: ArchiveStates, out: BatchOutcome): SequenceState {
  const interval = row.min_storage_interval * 1000;
  let lastStored = row.last_stored_t;
  const last: [number | null, number | null, string | null, string | null] = [row.last_t, row.last_num, row.last_text, row.last_blob_key];
  const definition = row.rrd === null ? null : parseDefinition(row.rrd);
  // Read when a value reaches the archives, changed in place.
  let state: RrdState | null | undefined;
  let rrdChanged = false;
  // An archive slot written twice in one batch keeps its newest row.
  const archiveRows = new Map<number, ArchiveRow>();
  const path = `/${row.slug}${row.path}`;
  const folderId = row.parent_id ?? '';
  let previousRow: ValueRow | undefined;
  entries.sort((a, b) => a.t - b.t);
  for (const { index, t, value } of entries) {
    const stored = interval === 0 || lastStored === null || t >= lastStored + interval;
    const blobKey = blobKeys.get(index) ?? null;
    const num = typeof value === 'number' ? value : null;
    const text = typeof value === 'string' ? value : null;
    if (stored) {
      lastStored = t;
      const data = blobKey === null && Buffer.isBuffer(value) ? value : null;
      // Sorted by time, so the same time twice is the previous row: the later value replaces it.
      if (previousRow !== undefined && previousRow[1] === t) [previousRow[2], previousRow[3], previousRow[4], previousRow[5]] = [num, text, data, blobKey];
      else out.values.push((previousRow = [row.resource_id, t, num, text, data, blobKey]));
    }
    if (definition && num !== null) {
      // The archives start at the first value, so that a device's buffered older readings still count.
      if (state === undefined) state = row.rrd_state === null ? null : states.take(row.resource_id, row.rrd_state);
      state ??= createRrdState(definition, t / 1000 - 1);
      if (t / 1000 > state.lastUpdate) {
        const update = updateRrd(definition, state, t / 1000, num);
        state = update.state;
        rrdChanged = true;
        // At most 20 archives (core/rrd.ts): the key is unique per (slot, archive).
        for (const r of update.rows) archiveRows.set(r.slot * 32 + r.archive, [row.resource_id, r.archive, r.slot, r.t, r.value]);
      }
    }
    if (last[0] === null || t >= last[0]) {
      last[0] = t;
      last[1] = num;
      last[2] = text;
      last[3] = blobKey;
    }
    out.results[index] = stored ? storedResult : skippedResult;
    out.committed.push({ orgId: row.org_id, sequenceId: row.resource_id, path, folderId, t, value: num ?? text, stored });
  }
  for (const r of archiveRows.values()) out.archiveRows.push(r);
  const rrdState = rrdChanged && state ? encodeState(state) : row.rrd_state;
  if (state && rrdState !== null) out.states.push({ id: row.resource_id, text: rrdState, state });
  return [...last, lastStored, rrdState, row.resource_id];
}

/**
 * Writes a batch of values in one transaction: the values (one multi-row upsert on (sequence, t)),
 * the archive rows, and each sequence's state. A value for an unknown sequence, of the wrong type or
 * with an invalid time gets its own error; the others are written.
 */
export async function writeBatch(deps: WriteBatchDeps, values: IngestValue[]): Promise<{ results: IngestResult[]; committed: CommittedValue[] }> {
  const results: IngestResult[] = new Array(values.length);
  const blobKeys = await uploadLargeImages(deps, values);
  const out: BatchOutcome = { values: [], archiveRows: [], sequences: [], results, committed: [], states: [] };
  // The store's commit listeners drop identity caches cluster-wide; values are no identity data.
  await deps.store.db.transaction().execute(async (tx) => {
    const ids = [...new Set(values.filter((v) => typeof v.sequenceId === 'string' && idPattern.test(v.sequenceId)).map((v) => v.sequenceId))];
    const sequences = await readSequences(tx, deps.store.kind, ids);
    const bySequence = new Map<string, Array<{ index: number; t: number; value: Coerced }>>();
    values.forEach((v, index) => {
      const row = sequences.get(v.sequenceId);
      if (!row) return void (results[index] = { error: notFound('Sequence') });
      if (!Number.isSafeInteger(v.t) || Math.abs(v.t) > 8.64e15) return void (results[index] = { error: badRequest('A value needs a time in whole milliseconds since the epoch') });
      const value = coerce(row.data_type, v.value);
      if (value instanceof FleetError) return void (results[index] = { error: value });
      let list = bySequence.get(row.resource_id);
      if (!list) bySequence.set(row.resource_id, (list = []));
      list.push({ index, t: v.t, value });
    });
    for (const [id, entries] of bySequence) out.sequences.push(applySequence(sequences.get(id)!, entries, blobKeys, deps.states, out));
    await writeBatchRows(deps.store, tx, out);
  });
  for (const { id, text, state } of out.states) deps.states.keep(id, text, state);
  await removeUnused(deps.blobs, blobKeys, results);
  return { results, committed: out.committed };
}

/** Images uploaded for values that were then refused. */
async function removeUnused(blobs: BlobStore, keys: Map<number, string>, results: IngestResult[]): Promise<void> {
  const unused = [...keys].filter(([index]) => 'error' in results[index]!).map(([, key]) => key);
  await Promise.all(unused.map((key) => blobs.delete(key).catch(() => {})));
}

