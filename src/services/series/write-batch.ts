import type { BlobStore } from '../../blob/blob-store.ts';
import { badRequest, FleetError, notFound } from '../../core/errors.ts';
import type { RrdDefinition } from '../../core/rrd.ts';
import { createRrdState, updateRrd, type RrdState } from '../../core/rrd-archive.ts';
import type { Database } from '../../store/schema.ts';
import type { Db, Store } from '../../store/store.ts';
import { updateRows, upsertRows } from './multi-row.ts';

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
}

type SequenceRow = Database['sequences'] & { path: string; parent_id: string | null; slug: string };
type Coerced = number | string | Buffer;

const idPattern = /^[A-Za-z0-9_-]{1,100}$/;
const idsPerQuery = 1000;
const valueColumns = ['sequence_id', 't', 'num', 'text', 'data', 'blob_key'] as const;
const rrdColumns = ['sequence_id', 'archive', 'slot', 't', 'value'] as const;

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

/** The batch's sequences, live ones only, locked on PostgreSQL against another node's batch updating the same archives. */
async function readSequences(tx: Db, kind: Store['kind'], ids: string[]): Promise<Map<string, SequenceRow>> {
  const rows = new Map<string, SequenceRow>();
  for (let i = 0; i < ids.length; i += idsPerQuery) {
    let query = tx
      .selectFrom('sequences as s')
      .innerJoin('resources as r', 'r.id', 's.resource_id')
      .innerJoin('organizations as o', 'o.id', 's.org_id')
      .selectAll('s')
      .select(['r.path', 'r.parent_id', 'o.slug'])
      .where('s.resource_id', 'in', ids.slice(i, i + idsPerQuery))
      .where('r.deleted', '=', 0);
    if (kind === 'postgres') query = query.forUpdate('s');
    for (const row of await query.execute()) rows.set(row.resource_id, row);
  }
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

/** What a batch changes of a sequence, in the order of `sequenceColumns` after its id. */
type SequenceState = [id: string, lastT: number | null, lastNum: number | null, lastText: string | null, lastBlobKey: string | null, lastStoredT: number | null, rrdState: string | null];
const sequenceColumns = ['last_t', 'last_num', 'last_text', 'last_blob_key', 'last_stored_t', 'rrd_state'] as const;
const sequenceTypes = ['text', 'bigint', 'double precision', 'text', 'text', 'bigint', 'text'] as const;

interface BatchRows {
  values: unknown[][];
  rrdRows: unknown[][];
  results: IngestResult[];
  committed: CommittedValue[];
}

/**
 * Applies one sequence's values of the batch in time order: min_storage_interval, the archives
 * (a time not after their last update leaves them as they are, the value is stored all the same),
 * the last value. Adds the rows to write and the results; returns the sequence's new state.
 */
function applySequence(row: SequenceRow, entries: Array<{ index: number; t: number; value: Coerced }>, blobKeys: Map<number, string>, out: BatchRows): SequenceState {
  const interval = row.min_storage_interval * 1000;
  let lastStored = row.last_stored_t;
  const last: [number | null, number | null, string | null, string | null] = [row.last_t, row.last_num, row.last_text, row.last_blob_key];
  const definition = row.rrd === null ? null : (JSON.parse(row.rrd) as RrdDefinition);
  let state = row.rrd_state === null ? null : (JSON.parse(row.rrd_state) as RrdState);
  let rrdChanged = false;
  // An archive slot written twice in one batch keeps its newest row.
  const rrdRows = new Map<number, unknown[]>();
  const path = `/${row.slug}${row.path}`;
  const folderId = row.parent_id ?? '';
  let previousRow: unknown[] | undefined;
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
      if (previousRow !== undefined && previousRow[1] === t) previousRow.splice(2, 4, num, text, data, blobKey);
      else out.values.push((previousRow = [row.resource_id, t, num, text, data, blobKey]));
    }
    if (definition && num !== null) {
      // The archives start at the first value, so that a device's buffered older readings still count.
      state ??= createRrdState(definition, t / 1000 - 1);
      if (t / 1000 > state.lastUpdate) {
        const update = updateRrd(definition, state, t / 1000, num);
        state = update.state;
        rrdChanged = true;
        // At most 20 archives (core/rrd.ts): the key is unique per (slot, archive).
        for (const r of update.rows) rrdRows.set(r.slot * 32 + r.archive, [row.resource_id, r.archive, r.slot, r.t, r.value]);
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
  for (const r of rrdRows.values()) out.rrdRows.push(r);
  return [row.resource_id, ...last, lastStored, rrdChanged ? JSON.stringify(state) : row.rrd_state];
}

/**
 * Writes a batch of values in one transaction: the values (one multi-row upsert on (sequence, t)),
 * the archive rows, and each sequence's state. A value for an unknown sequence, of the wrong type or
 * with an invalid time gets its own error; the others are written.
 */
export async function writeBatch(deps: WriteBatchDeps, values: IngestValue[]): Promise<{ results: IngestResult[]; committed: CommittedValue[] }> {
  const results: IngestResult[] = new Array(values.length);
  const blobKeys = await uploadLargeImages(deps, values);
  const out: BatchRows = { values: [], rrdRows: [], results, committed: [] };
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
    const states: SequenceState[] = [];
    for (const [id, entries] of bySequence) states.push(applySequence(sequences.get(id)!, entries, blobKeys, out));
    await upsertRows(tx, deps.store.kind, 'sequence_values', valueColumns, ['sequence_id', 't'], out.values);
    await upsertRows(tx, deps.store.kind, 'rrd_rows', rrdColumns, ['sequence_id', 'archive', 'slot'], out.rrdRows);
    await updateRows(tx, deps.store.kind, 'sequences', 'resource_id', sequenceColumns, sequenceTypes, states);
  });
  await removeUnused(deps.blobs, blobKeys, results);
  return { results, committed: out.committed };
}

/** Images uploaded for values that were then refused. */
async function removeUnused(blobs: BlobStore, keys: Map<number, string>, results: IngestResult[]): Promise<void> {
  const unused = [...keys].filter(([index]) => 'error' in results[index]!).map(([, key]) => key);
  await Promise.all(unused.map((key) => blobs.delete(key).catch(() => {})));
}

