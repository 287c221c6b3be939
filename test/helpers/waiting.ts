import assert from 'node:assert/strict';

/**
 * Waiting for something a socket will receive: `until` re-checks its condition whenever `arrived`
 * is called (on each frame), and at least every 50 ms, and fails the test after `ms`.
 */
export class Arrivals {
  #wake = () => {};

  arrived(): void {
    this.#wake();
  }

  async until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!condition()) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) assert.fail(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 50));
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

/** Reads until `check` accepts what was read (every 10 ms), and fails the test after `ms`. */
export async function readUntil<T>(read: () => Promise<T> | T, check: (value: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) assert.fail(`still ${JSON.stringify(value)} after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
