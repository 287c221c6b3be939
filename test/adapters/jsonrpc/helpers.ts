import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../../src/log.ts';

/** A logger whose lines the test can read, to see what a failure logged and what it did not say. */
export function capturingLogger(level = 'debug'): { logger: Logger; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  const text = () => chunks.join('');
  return {
    logger: createLogger(level, destination),
    text,
    lines: () => text().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** What a reply text says, as JSON; `undefined` when nothing is sent back. */
export const decoded = (text: string | undefined): unknown => (text === undefined ? undefined : JSON.parse(text));
