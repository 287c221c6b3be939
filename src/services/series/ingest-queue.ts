import { FleetError } from '../../core/errors.ts';

export interface IngestQueueOptions<I, R> {
  /** Most items queued or being written; callers beyond it wait for room. */
  capacity: number;
  /** Most items handed to one `write`. */
  batchSize: number;
  /**
   * How long the first item queued while nothing is being written waits for more to fill a batch;
   * 0 writes it on the next turn of the event loop. Items queued during a write always wait for it
   * and go together into the next batch (group commit), so batches grow with the load by themselves.
   */
  flushIntervalMs: number;
  /** Writes one batch, giving one result per item in order; a throw fails only this batch's callers. */
  write: (items: I[]) => Promise<R[]>;
}

interface Entry<I, R> {
  items: I[];
  resolve: (results: R[]) => void;
  reject: (error: unknown) => void;
}

/**
 * A bounded queue that groups what many callers send into batches written one after another.
 * A caller's promise settles with its batch's write, so an acknowledgement means written. When the
 * queue is full, callers wait in turn for room instead of the queue growing: the wait is what
 * pushes back on a device sending too fast.
 */
export class IngestQueue<I, R> {
  readonly #options: IngestQueueOptions<I, R>;
  /** Items queued or being written, plus room promised to admitted callers. */
  #pending = 0;
  #queued: Array<Entry<I, R>> = [];
  #queuedItems = 0;
  readonly #waiting: Array<{ size: number; admit: () => void }> = [];
  #writing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  #closed = false;

  constructor(options: IngestQueueOptions<I, R>) {
    this.#options = options;
  }

  /** Queues `items` and resolves with their results once they are written. */
  async push(items: I[]): Promise<R[]> {
    if (this.#closed) throw new FleetError('unavailable', 'The server is shutting down');
    if (items.length === 0) return [];
    // Chunks no larger than a batch or the whole queue, so that every chunk can get in.
    const size = Math.max(1, Math.min(this.#options.batchSize, this.#options.capacity));
    const chunks: I[][] = [];
    for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
    return (await Promise.all(chunks.map((chunk) => this.#enqueue(chunk)))).flat();
  }

  /** Refuses new items and resolves once everything queued (and every waiting caller's items) is written. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#pending > 0 || this.#waiting.length > 0) {
      this.#startWriting();
      await (this.#writing ?? new Promise((resolve) => setImmediate(resolve)));
    }
    this.#clearTimer();
  }

  async #enqueue(items: I[]): Promise<R[]> {
    if (this.#waiting.length > 0 || this.#pending + items.length > this.#options.capacity) {
      await new Promise<void>((admit) => this.#waiting.push({ size: items.length, admit }));
    } else {
      this.#pending += items.length;
    }
    return new Promise<R[]>((resolve, reject) => {
      this.#queued.push({ items, resolve, reject });
      this.#queuedItems += items.length;
      if (this.#queuedItems >= this.#options.batchSize) this.#startWriting();
      else if (!this.#writing) this.#timer ??= this.#schedule();
    });
  }

  #schedule(): NodeJS.Timeout | NodeJS.Immediate {
    const write = () => this.#startWriting();
    return this.#options.flushIntervalMs === 0 ? setImmediate(write) : setTimeout(write, this.#options.flushIntervalMs);
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    if (this.#options.flushIntervalMs === 0) clearImmediate(this.#timer as NodeJS.Immediate);
    else clearTimeout(this.#timer as NodeJS.Timeout);
    this.#timer = undefined;
  }

  #startWriting(): void {
    this.#clearTimer();
    if (this.#writing || this.#queued.length === 0) return;
    this.#writing = this.#drain().finally(() => {
      this.#writing = undefined;
      // Callers admitted during the last write may have queued after the loop looked.
      if (this.#queued.length > 0) this.#startWriting();
    });
  }

  /** Writes batch after batch while items are queued: those that came during a write have waited long enough. */
  async #drain(): Promise<void> {
    while (this.#queued.length > 0) {
      const batch: Array<Entry<I, R>> = [];
      let count = 0;
      while (this.#queued.length > 0 && (batch.length === 0 || count + this.#queued[0]!.items.length <= this.#options.batchSize)) {
        const entry = this.#queued.shift()!;
        batch.push(entry);
        count += entry.items.length;
      }
      this.#queuedItems -= count;
      try {
        const results = await this.#options.write(batch.flatMap((entry) => entry.items));
        let offset = 0;
        for (const entry of batch) {
          entry.resolve(results.slice(offset, offset + entry.items.length));
          offset += entry.items.length;
        }
      } catch (error) {
        for (const entry of batch) entry.reject(error);
      }
      this.#pending -= count;
      this.#admit();
    }
  }

  /** Lets waiting callers in, oldest first, as far as the room freed allows. */
  #admit(): void {
    while (this.#waiting.length > 0 && this.#pending + this.#waiting[0]!.size <= this.#options.capacity) {
      const next = this.#waiting.shift()!;
      this.#pending += next.size;
      next.admit();
    }
  }
}
