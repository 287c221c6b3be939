import type { BlobStore } from '../../blob/blob-store.ts';
import type { Store } from '../../store/store.ts';

/**
 * One retention pass: drops the values older than their sequence's max_age, and of each sequence
 * those beyond its max_history newest, with their images in blob storage. Every node may run it:
 * deleting what is already gone changes nothing. Counting walks a sequence's values, so with
 * `historySince` (ms) only sequences with a value since then are counted: only they can have grown.
 * Returns how many values went.
 */
export async function pruneSequences(store: Store, blobs: BlobStore, options: { now?: number; historySince?: number } = {}): Promise<number> {
  const now = options.now ?? Date.now();
  const since = options.historySince;
  const sequences = await store.db
    .selectFrom('sequences')
    .select(['resource_id', 'max_history', 'max_age', 'last_t'])
    .where((eb) => eb.or([eb('max_history', 'is not', null), eb('max_age', 'is not', null)]))
    .execute();
  let removed = 0;
  for (const sequence of sequences) {
    // Everything up to the newest of these times goes.
    const cutoffs: number[] = [];
    if (sequence.max_age !== null) cutoffs.push(now - sequence.max_age * 1000 - 1);
    if (sequence.max_history !== null && (since === undefined || (sequence.last_t ?? -Infinity) >= since)) {
      const beyond = await store.db
        .selectFrom('sequence_values')
        .select('t')
        .where('sequence_id', '=', sequence.resource_id)
        .orderBy('t', 'desc')
        .limit(1)
        .offset(sequence.max_history)
        .executeTakeFirst();
      if (beyond) cutoffs.push(beyond.t);
    }
    if (cutoffs.length === 0) continue;
    const deleted = await store.db
      .deleteFrom('sequence_values')
      .where('sequence_id', '=', sequence.resource_id)
      .where('t', '<=', Math.max(...cutoffs))
      .returning('blob_key')
      .execute();
    removed += deleted.length;
    await Promise.all(deleted.flatMap((row) => (row.blob_key === null ? [] : [blobs.delete(row.blob_key)])));
  }
  return removed;
}
