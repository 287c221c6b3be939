import type { BlobStore } from '../../blob/blob-store.ts';
import { badRequest, FleetError, notFound } from '../../core/errors.ts';
import { createRrdState, updateRrd } from '../../core/rrd-archive.ts';
import type { Store } from '../../store/store.ts';
import { writeBatchRows, type ArchiveRow, type BatchRows, type SequenceState, type ValueRow } from './batch-writes.ts';
import { readHeads, type SequenceHead, type SequenceHeads } from './sequence-heads.ts';
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
  /** The sequences this node wrote to before, as it wrote them. */
  heads: SequenceHeads;
}

type Coerced = number | string | Buffer;

const idPattern = /^[A-Za-z0-9_-]{1,100}$/;

/** How often a batch is written again after another writer changed one of its sequences in between. */
const maxAttempts = 3;

/** Where an image value too large for the database is kept: one key per (sequence, time), as the value itself. */
const imageBlobKey = (sequenceId: string, t: number) => `seq/${sequenceId}/${t}`;

/** The value as the sequence's type keeps it (numbers and text are accepted for each other where they convert), or why not. */
function coerce(dataType: SequenceHead['dataType'], value: unknown): Coerced | FleetError {
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
}

type Entry = { index: number; t: number; value: Coerced };

/**
 * Applies one sequence's values of the batch in time order to its head: min_storage_interval, the
 * archives (a time not after their last update leaves them as they are, the value is stored all the
 * same), the last value. Adds the rows to write and the results; returns the sequence's new state.
 */
function applySequence(head: SequenceHead, entries: Entry[], blobKeys: Map<number, string>, out: BatchOutcome): SequenceState {
  const interval = head.minStorageInterval * 1000;
  const { definition } = head;
  let rrdChanged = false;
  // An archive slot written twice in one batch keeps its newest row.
  const archiveRows = new Map<number, ArchiveRow>();
  let previousRow: ValueRow | undefined;
  entries.sort((a, b) => a.t - b.t);
  for (const { index, t, value } of entries) {
    const stored = interval === 0 || head.lastStoredT === null || t >= head.lastStoredT + interval;
    const blobKey = blobKeys.get(index) ?? null;
    const num = typeof value === 'number' ? value : null;
    const text = typeof value === 'string' ? value : null;
    if (stored) {
      head.lastStoredT = t;
      const data = blobKey === null && Buffer.isBuffer(value) ? value : null;
      // Sorted by time, so the same time twice is the previous row: the later value replaces it.
      if (previousRow !== undefined && previousRow[1] === t) [previousRow[2], previousRow[3], previousRow[4], previousRow[5]] = [num, text, data, blobKey];
      else out.values.push((previousRow = [head.id, t, num, text, data, blobKey]));
    }
    if (definition && num !== null) {
      // The archives start at the first value, so that a device's buffered older readings still count.
      head.state ??= createRrdState(definition, t / 1000 - 1);
      if (t / 1000 > head.state.lastUpdate) {
        const update = updateRrd(definition, head.state, t / 1000, num);
        head.state = update.state;
        rrdChanged = true;
        // At most 20 archives (core/rrd.ts): the key is unique per (slot, archive).
        for (const r of update.rows) archiveRows.set(r.slot * 32 + r.archive, [head.id, r.archive, r.slot, r.t, r.value]);
      }
    }
    if (head.lastT === null || t >= head.lastT) {
      head.lastT = t;
      head.lastNum = num;
      head.lastText = text;
      head.lastBlobKey = blobKey;
    }
    out.results[index] = stored ? storedResult : skippedResult;
    out.committed.push({ orgId: head.orgId, sequenceId: head.id, path: head.path, folderId: head.folderId, t, value: num ?? text, stored });
  }
  for (const r of archiveRows.values()) out.archiveRows.push(r);
  if (rrdChanged && head.state) head.stateText = encodeState(head.state);
  return [head.lastT, head.lastNum, head.lastText, head.lastBlobKey, head.lastStoredT, head.stateText, head.id, head.revision];
}

/**
 * Writes a batch of values in one transaction: the values (one multi-row upsert on (sequence, t)),
 * the archive rows, and each sequence's state. A value for an unknown sequence, of the wrong type or
 * with an invalid time gets its own error; the others are written.
 */
export async function writeBatch(deps: WriteBatchDeps, values: IngestValue[]): Promise<{ results: IngestResult[]; committed: CommittedValue[] }> {
  const blobKeys = await uploadLargeImages(deps, values);
  const ids = [...new Set(values.filter((v) => typeof v.sequenceId === 'string' && idPattern.test(v.sequenceId)).map((v) => v.sequenceId))];
  for (let attempt = 1; ; attempt++) {
    const generation = deps.heads.generation;
    try {
      const { heads, out } = await writeOnce(deps, values, ids, blobKeys);
      for (const head of heads) head.revision += 1;
      deps.heads.keep(heads, generation);
      await removeUnused(deps.blobs, blobKeys, out.results);
      return { results: out.results, committed: out.committed };
    } catch (error) {
      // Heads the failed batch changed are wrong now; the next batch reads what was committed.
      deps.heads.forget();
      if (attempt < maxAttempts && isWriteConflict(error)) continue;
      throw error;
    }
  }
}

/** One attempt of a batch: the heads it changed and what it wrote, or a throw (a conflict among them) with nothing written. */
async function writeOnce(deps: WriteBatchDeps, values: IngestValue[], ids: string[], blobKeys: Map<number, string>): Promise<{ heads: SequenceHead[]; out: BatchOutcome }> {
  const results: IngestResult[] = new Array(values.length);
  const out: BatchOutcome = { values: [], archiveRows: [], sequences: [], results, committed: [] };
  const { heads, missing } = deps.heads.recall(ids);
  const written: SequenceHead[] = [];
  // The store's commit listeners drop identity caches cluster-wide; values are no identity data.
  await deps.store.db.transaction().execute(async (tx) => {
    for (const head of await readHeads(tx, deps.store.kind, missing)) heads.set(head.id, head);
    const bySequence = new Map<string, Entry[]>();
    values.forEach((v, index) => {
      const head = heads.get(v.sequenceId);
      if (!head) return void (results[index] = { error: notFound('Sequence') });
      if (!Number.isSafeInteger(v.t) || Math.abs(v.t) > 8.64e15) return void (results[index] = { error: badRequest('A value needs a time in whole milliseconds since the epoch') });
      const value = coerce(head.dataType, v.value);
      if (value instanceof FleetError) return void (results[index] = { error: value });
      let list = bySequence.get(head.id);
      if (!list) bySequence.set(head.id, (list = []));
      list.push({ index, t: v.t, value });
    });
    for (const [id, entries] of bySequence) {
      const head = heads.get(id)!;
      out.sequences.push(applySequence(head, entries, blobKeys, out));
      written.push(head);
    }
    const changed = await writeBatchRows(deps.store, tx, out);
    if (changed !== out.sequences.length) throw new SequenceConflict();
  });
  return { heads: written, out };
}

/** A sequence of the batch changed since its head was read: the batch is rolled back and written again. */
class SequenceConflict extends FleetError {
  constructor() {
    super('conflict', 'A sequence changed while values were written to it; try again');
  }
}

/** PostgreSQL's deadlock_detected: two nodes' batches locked the same sequences in another order. */
const isWriteConflict = (error: unknown) => error instanceof SequenceConflict || (error as { code?: unknown } | undefined)?.code === '40P01';

/** Images uploaded for values that were then refused. */
async function removeUnused(blobs: BlobStore, keys: Map<number, string>, results: IngestResult[]): Promise<void> {
  const unused = [...keys].filter(([index]) => 'error' in results[index]!).map(([, key]) => key);
  await Promise.all(unused.map((key) => blobs.delete(key).catch(() => {})));
}

