/** Redraws per second at most: more is flicker and wasted writes on a slow terminal. */
const redrawInterval = 100;
const barWidth = 30;

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

interface ProgressStream {
  isTTY?: boolean;
  write(text: string): boolean;
}

/**
 * How far a transfer of a known size has come: on a terminal a bar redrawn in place (bytes,
 * percent, rate); elsewhere (a log, a pipe) nothing until the one line that says it is done.
 */
export class TransferProgress {
  private readonly total: number;
  private readonly label: string;
  private readonly out: ProgressStream;
  private readonly startedAt = Date.now();
  private done = 0;
  private drawnAt = 0;

  constructor(total: number, label: string, out: ProgressStream = process.stderr) {
    this.total = total;
    this.label = label;
    this.out = out;
  }

  advance(bytes: number): void {
    this.done += bytes;
    const now = Date.now();
    if (this.out.isTTY && now - this.drawnAt >= redrawInterval) {
      this.drawnAt = now;
      this.out.write(`\r${this.bar()}\x1b[K`);
    }
  }

  /** Ends the display: the full bar on a terminal, then a line with the size, the time and the rate. */
  finish(): void {
    if (this.out.isTTY) this.out.write(`\r${this.bar()}\x1b[K\n`);
    const seconds = this.elapsedSeconds();
    this.out.write(`${this.label}: ${formatBytes(this.done)} in ${seconds.toFixed(1)} s (${formatBytes(this.done / seconds)}/s)\n`);
  }

  /** Leaves the terminal on a fresh line when the transfer fails half-way. */
  abort(): void {
    if (this.out.isTTY && this.drawnAt > 0) this.out.write('\n');
  }

  private elapsedSeconds(): number {
    // At least a millisecond, so that an instant transfer has a rate.
    return Math.max(Date.now() - this.startedAt, 1) / 1000;
  }

  private bar(): string {
    const fraction = this.total > 0 ? Math.min(this.done / this.total, 1) : 1;
    const filled = Math.round(fraction * barWidth);
    const rate = this.done / this.elapsedSeconds();
    return `${this.label} [${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%  ${formatBytes(this.done)} / ${formatBytes(this.total)}  ${formatBytes(rate)}/s`;
  }
}
