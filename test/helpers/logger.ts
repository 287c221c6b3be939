import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.ts';

/** A logger whose entries a test can read: what a failure logged, and what it did not say. */
export function recordingLogger(level = 'debug'): { logger: Logger; entries: Array<Record<string, unknown>>; text: () => string } {
  const entries: Array<Record<string, unknown>> = [];
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      entries.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger(level, sink), entries, text: () => chunks.join('') };
}
