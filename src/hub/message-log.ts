import { mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Config } from '../config/keys.ts';
import type { Logger } from '../log.ts';

export interface MessageLogEntry {
  /** The endpoint that routed the frame ('relay', 'shelly', ...). */
  endpoint: string;
  /** Seen from the device: 'in' travels to it (a page's or fleetd's frame, `<`), 'out' comes from it (`>`). */
  direction: 'in' | 'out';
  /** The relay channel, or the device's name for the protocol. */
  channel: string;
  text: string | Buffer;
}

/** The routed-message log: one line per frame, in Paikea's layout with an ISO time. */
export interface MessageLog {
  /** Queues one line; never blocks, never throws. Lines are dropped (and counted) while the queue is full. */
  write(entry: MessageLogEntry): void;
  /** Writes what is queued, then closes the file. */
  close(): Promise<void>;
}

/** Characters of lines waiting to be written; beyond it lines are dropped rather than held in memory. */
const maxQueuedChars = 8 * 1024 * 1024;
/** Bytes handed to one write call. */
const batchBytes = 64 * 1024;
/** Nesting inspected for secrets; anything deeper is written as [redacted]. */
const maxRedactDepth = 64;
const redacted = '[redacted]';

/**
 * 'off' → a log that writes nothing; '' → <data>/messages.log; else the file named. Size-bounded
 * rotation (messageLogMaxBytes, keeping messageLogFiles older files), secrets redacted by the
 * messageLogRedact patterns.
 */
export function openMessageLog(config: Config, logger: Logger): MessageLog {
  if (config.messageLog === 'off') return { write: () => {}, close: async () => {} };
  const path = config.messageLog === '' ? join(config.data, 'messages.log') : config.messageLog;
  return new FileMessageLog(path, config.messageLogMaxBytes, config.messageLogFiles, frameRedactor(config.messageLogRedact), logger.child({ path }));
}

/** One line of the log: `<ISO time> <endpoint> <'<'|'>'> <channel>/ <frame>`. */
export function formatLine(entry: MessageLogEntry, redact: (text: string) => string, at = new Date()): string {
  const frame = typeof entry.text === 'string' ? redact(entry.text) : `<binary ${entry.text.length} bytes>`;
  return `${at.toISOString()} ${oneLine(entry.endpoint)} ${entry.direction === 'in' ? '<' : '>'} ${oneLine(entry.channel)}/ ${oneLine(frame)}\n`;
}

// A frame must not start a line of its own (a forged entry) nor carry terminal escapes into a reader's console.
const oneLine = (text: string) =>
  text.replace(/[\u0000-\u0008\u000a-\u001f\u007f\u2028\u2029]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));

/**
 * What the log shows of a text frame. JSON: values of keys matching a pattern, and the arguments of
 * relay commands `[verb, item, args]` whose item matches, become "[redacted]" at any depth (the JSON
 * is written re-serialized only when something was redacted); a string holding a frame (a device
 * echoing a request it could not parse) is inspected as a frame. Other text is written as it is,
 * except that it is cut after the first word matching a pattern: a malformed `store_new_sta`
 * command still carries the password.
 */
export function frameRedactor(patterns: readonly string[]): (text: string) => string {
  if (patterns.length === 0) return (text) => text;
  const matcher = new RegExp(`^(?:${patterns.map((p) => p.split('*').map(escapeRegExp).join('.*')).join('|')})$`, 'is');
  const matches = (name: string) => matcher.test(name);

  const scrub = (text: string): string => {
    for (const word of text.matchAll(/[A-Za-z0-9_]+/g)) {
      if (matches(word[0])) return `${text.slice(0, word.index + word[0].length)} ${redacted}`;
    }
    return text;
  };

  /** The value with secrets replaced, or the same value when there were none. */
  const walk = (value: unknown, depth: number): unknown => {
    if (typeof value === 'string') return /^\s*[[{]/.test(value) ? redactText(value, depth + 1) : value;
    if (value === null || typeof value !== 'object') return value;
    if (depth >= maxRedactDepth) return redacted;
    if (Array.isArray(value)) {
      const [verb, item, args] = value as unknown[];
      if (value.length === 3 && typeof verb === 'string' && typeof item === 'string' && Array.isArray(args) && args.length > 0 && matches(item)) {
        return [verb, item, [redacted]];
      }
      const items = value.map((v) => walk(v, depth + 1));
      return items.some((v, i) => v !== value[i]) ? items : value;
    }
    const members = Object.entries(value);
    const shown = members.map(([key, member]) => [key, matches(key) ? redacted : walk(member, depth + 1)] as const);
    return shown.some(([, member], i) => member !== members[i]![1]) ? Object.fromEntries(shown) : value;
  };

  const redactText = (text: string, depth: number): string => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return scrub(text);
    }
    const shown = walk(parsed, depth);
    return shown === parsed ? text : JSON.stringify(shown);
  };

  return (text) => redactText(text, 0);
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Appends lines through a bounded queue written by one asynchronous loop, so that a slow disk
 * neither blocks the event loop nor grows memory: when the queue is full, lines are dropped and
 * counted. Before a write would take the file past `maxBytes`, it becomes `<file>.1`, the older ones
 * move up by one, and those beyond `files` are deleted.
 */
class FileMessageLog implements MessageLog {
  private readonly queue: string[] = [];
  private queuedChars = 0;
  private handle?: FileHandle;
  private size = 0;
  private draining?: Promise<void>;
  private closed = false;
  /** Lines dropped since the queue last emptied, and in all. */
  private droppedNow = 0;
  private droppedTotal = 0;
  private failing = false;

  constructor(
    private readonly path: string,
    private readonly maxBytes: number,
    private readonly files: number,
    private readonly redact: (text: string) => string,
    private readonly logger: Logger,
  ) {}

  write(entry: MessageLogEntry): void {
    if (this.closed) return;
    if (this.queuedChars >= maxQueuedChars) {
      if (this.droppedNow === 0) this.logger.warn('the message log cannot keep up: dropping lines until its queue drains');
      this.droppedNow += 1;
      this.droppedTotal += 1;
      return;
    }
    let line: string;
    try {
      line = formatLine(entry, this.redact);
    } catch (error) {
      this.logger.warn({ err: error }, 'a frame could not be written to the message log');
      return;
    }
    this.queue.push(line);
    this.queuedChars += line.length;
    this.kick();
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.draining) await this.draining;
    await this.handle?.close().catch(() => {});
    this.handle = undefined;
    if (this.droppedTotal > 0) this.logger.warn({ dropped: this.droppedTotal }, 'message log closed; lines were dropped while it could not keep up');
  }

  private kick(): void {
    if (this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      let count = 0;
      let bytes = 0;
      try {
        await this.ensureOpen();
        for (const line of this.queue) {
          const lineBytes = Buffer.byteLength(line);
          if (this.size + bytes + lineBytes > this.maxBytes && this.size + bytes > 0) {
            if (count > 0) break;
            await this.rotate();
          }
          count += 1;
          bytes += lineBytes;
          if (bytes >= batchBytes) break;
        }
        const lines = this.take(count);
        await this.handle!.write(lines.join(''));
        this.size += bytes;
        this.failing = false;
      } catch (error) {
        // The lines are lost; the next ones try a fresh file handle.
        const lost = this.take(count > 0 ? count : this.queue.length).length;
        this.droppedTotal += lost;
        if (!this.failing) this.logger.error({ err: error, lost }, 'cannot write the message log');
        this.failing = true;
        await this.handle?.close().catch(() => {});
        this.handle = undefined;
      }
    }
    if (this.droppedNow > 0) {
      this.logger.warn({ dropped: this.droppedNow }, 'the message log caught up; lines were dropped meanwhile');
      this.droppedNow = 0;
    }
  }

  private take(count: number): string[] {
    const lines = this.queue.splice(0, count);
    for (const line of lines) this.queuedChars -= line.length;
    return lines;
  }

  private async ensureOpen(): Promise<void> {
    if (this.handle) return;
    await mkdir(dirname(this.path), { recursive: true });
    this.handle = await open(this.path, 'a');
    this.size = (await this.handle.stat()).size;
  }

  private async rotate(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
    const name = basename(this.path);
    const numbered = new RegExp(`^${escapeRegExp(name)}\\.(\\d+)$`);
    // Files beyond the kept number, also those left by an earlier, larger messageLogFiles.
    for (const entry of await readdir(dirname(this.path))) {
      const n = numbered.exec(entry);
      if (n && Number(n[1]) >= this.files) await unlink(join(dirname(this.path), entry)).catch(ignoreMissing);
    }
    for (let n = this.files - 1; n >= 1; n--) await rename(`${this.path}.${n}`, `${this.path}.${n + 1}`).catch(ignoreMissing);
    await rename(this.path, `${this.path}.1`).catch(ignoreMissing);
    await this.ensureOpen();
  }
}

function ignoreMissing(error: NodeJS.ErrnoException): void {
  if (error.code !== 'ENOENT') throw error;
}
