/**
 * Splits a connection's bytes into `\n`-terminated lines. Unlike upstream (a fresh reader per line,
 * which loses lines sharing a TCP segment), it keeps what follows a line for the next one, so any
 * number of lines per segment and lines split over segments all arrive.
 */
export class LineTooLongError extends Error {
  constructor(maxLength: number) {
    super(`a line longer than ${maxLength} bytes`);
  }
}

export class LineReader {
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes at the start of `pending` already searched for a newline: a trickled line is scanned once. */
  private scanned = 0;

  constructor(private readonly maxLength: number) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
  }

  /**
   * The next whole line without its `\n`, or undefined until one has arrived. Throws
   * LineTooLongError as soon as a line is known to exceed the limit, before the rest of it arrives.
   */
  next(): Buffer | undefined {
    const end = this.pending.indexOf(0x0a, this.scanned);
    if (end === -1) {
      this.scanned = this.pending.length;
      if (this.pending.length > this.maxLength) throw new LineTooLongError(this.maxLength);
      return undefined;
    }
    if (end > this.maxLength) throw new LineTooLongError(this.maxLength);
    const line = this.pending.subarray(0, end);
    this.pending = this.pending.subarray(end + 1);
    this.scanned = 0;
    return line;
  }

  /** Whether bytes of an unfinished line are waiting. */
  get partial(): boolean {
    return this.pending.length > 0;
  }
}
