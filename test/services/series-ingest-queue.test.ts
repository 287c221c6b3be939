import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IngestQueue } from '../../src/services/series/ingest-queue.ts';

/** The bounded batching queue alone: batches, backpressure, failures confined to their batch. */

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('ingest queue', () => {
  it('groups concurrent callers into batches of at most batchSize and answers each with its own results', async () => {
    const batches: number[][] = [];
    const queue = new IngestQueue<number, number>({
      capacity: 100,
      batchSize: 4,
      flushIntervalMs: 5,
      write: async (items) => {
        batches.push(items);
        return items.map((i) => i * 10);
      },
    });
    const results = await Promise.all([queue.push([1, 2]), queue.push([3]), queue.push([4, 5, 6])]);
    assert.deepEqual(results, [[10, 20], [30], [40, 50, 60]]);
    assert.ok(batches.every((b) => b.length <= 4));
    assert.deepEqual(batches.flat().sort(), [1, 2, 3, 4, 5, 6]);
    await queue.close();
  });

  it('makes callers wait while the queue is full, loses nothing, and keeps their order', async () => {
    const written: number[] = [];
    let release: () => void = () => {};
    let gate = new Promise<void>((resolve) => (release = resolve));
    const queue = new IngestQueue<number, boolean>({
      capacity: 3,
      batchSize: 2,
      flushIntervalMs: 0,
      write: async (items) => {
        await gate;
        written.push(...items);
        return items.map(() => true);
      },
    });
    const settled: number[] = [];
    const calls = Array.from({ length: 10 }, (_, i) => queue.push([i]).then(() => settled.push(i)));
    await tick();
    await tick();
    assert.equal(written.length, 0, 'nothing is acknowledged before its write');
    assert.equal(settled.length, 0);
    for (let round = 0; round < 10 && settled.length < 10; round++) {
      release();
      gate = new Promise<void>((resolve) => (release = resolve));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    release();
    await Promise.all(calls);
    assert.deepEqual(written, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(settled, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await queue.close();
  });

  it('goes on with callers let in while the last batch was written, without waiting for the flush timer', async () => {
    const queue = new IngestQueue<number, number>({ capacity: 3, batchSize: 2, flushIntervalMs: 60_000, write: async (items) => items });
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => queue.push([i, -i])));
    assert.equal(results.flat().length, 40);
    await queue.close();
  });

  it('holds at most capacity items at once', async () => {
    let pendingMax = 0;
    let inWrite = 0;
    const queue = new IngestQueue<number, number>({
      capacity: 5,
      batchSize: 5,
      flushIntervalMs: 1,
      write: async (items) => {
        inWrite += items.length;
        pendingMax = Math.max(pendingMax, inWrite);
        await new Promise((resolve) => setTimeout(resolve, 2));
        inWrite -= items.length;
        return items;
      },
    });
    const all = await Promise.all(Array.from({ length: 12 }, (_, i) => queue.push([i, i + 100])));
    assert.equal(all.flat().length, 24);
    assert.ok(pendingMax <= 5, `at most 5 in a write, saw ${pendingMax}`);
    await queue.close();
  });

  it('rejects only the callers of a failed batch', async () => {
    const queue = new IngestQueue<string, string>({
      capacity: 10,
      batchSize: 1,
      flushIntervalMs: 0,
      write: async ([item]) => {
        if (item === 'bad') throw new Error('disk full');
        return [item!];
      },
    });
    const [good, bad, other] = await Promise.allSettled([queue.push(['a']), queue.push(['bad']), queue.push(['b'])]);
    assert.deepEqual(good, { status: 'fulfilled', value: ['a'] });
    assert.equal(bad.status, 'rejected');
    assert.deepEqual(other, { status: 'fulfilled', value: ['b'] });
    await queue.close();
  });

  it('writes what is queued on close and refuses more afterwards', async () => {
    const written: number[] = [];
    const queue = new IngestQueue<number, number>({ capacity: 10, batchSize: 100, flushIntervalMs: 10_000, write: async (items) => (written.push(...items), items) });
    const pending = queue.push([1, 2, 3]);
    await queue.close();
    assert.deepEqual(await pending, [1, 2, 3]);
    assert.deepEqual(written, [1, 2, 3]);
    await assert.rejects(queue.push([4]), { code: 'unavailable' });
  });
});
