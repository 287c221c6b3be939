interface Entry<V> {
  value: V;
  /** Milliseconds since the epoch after which the entry is not used. */
  until: number;
  generation: number;
}

/**
 * Identity data this node has read (who a credential stands for, an organization), kept for a few
 * seconds so that a busy client does not cost a signature check and several queries per request.
 *
 * Every transaction committed on this node clears it at once (see Store.onCommit); a lookup records
 * the generation it started in, so an answer read before a commit is never served after it.
 * Changes committed by another node of a cluster take effect here within `ttlMs`.
 */
export class NodeCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private current = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
  ) {}

  /** The generation a lookup starts in: pass it to `remember`. */
  get generation(): number {
    return this.current;
  }

  recall(key: string, now = Date.now()): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.generation !== this.current || entry.until <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  /** Keeps a value until the TTL passes or `expiresAt` (when the value stops being true), whichever is first. */
  remember(key: string, value: V, generation: number, expiresAt?: number): void {
    if (this.ttlMs <= 0 || generation !== this.current) return;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, until: Math.min(Date.now() + this.ttlMs, expiresAt ?? Infinity), generation });
  }

  invalidate(): void {
    this.current += 1;
    this.entries.clear();
  }
}
