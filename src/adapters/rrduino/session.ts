import type { Socket } from 'node:net';
import type { Logger } from '../../log.ts';
import { quoted, Refusal, refuse, type SessionContext, type SessionState } from './context.ts';
import { handleHello } from './handle-hello.ts';
import { handleUpdate } from './handle-update.ts';
import { LineReader, LineTooLongError } from './line-reader.ts';

/** Longer than any line an Arduino sends (a few readings and a 64-character MAC), short enough to hold per connection. */
export const maxLineLength = 4096;

/** Python's rstrip(): upstream drops all trailing ASCII whitespace, so `\r\n` endings work too. */
const trailingWhitespace = /[ \t\n\r\v\f]+$/;

/**
 * One TCP connection: its lines are handled one at a time, in order, the socket paused meanwhile,
 * so that a client's lines never overtake each other's commits and a fast sender is slowed down by
 * TCP itself. Any error closes the connection without a word (the protocol has none); the log says
 * why. A connection silent for rrduinoIdleTimeout, or stuck that long in an unfinished line, is closed.
 */
export class RrduinoSession {
  private readonly reader = new LineReader(maxLineLength);
  private readonly state: SessionState;
  private readonly connectionLogger: Logger;
  /** The connection's logger, naming the client once it said hello. */
  private logger: Logger;
  private handling = false;
  private ended = false;
  private closed = false;
  private idle?: NodeJS.Timeout;
  /** The lines being handled: what the listener waits for when it stops. */
  private work: Promise<void> = Promise.resolve();

  constructor(
    private readonly socket: Socket,
    private readonly context: SessionContext,
    private readonly idleTimeoutMs: number,
  ) {
    this.connectionLogger = context.logger.child({ remote: `${socket.remoteAddress}:${socket.remotePort}` });
    this.logger = this.connectionLogger;
    this.state = { write: (bytes) => void socket.write(bytes) };
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      this.drain();
    });
    socket.on('end', () => {
      this.ended = true;
      this.drain();
    });
    socket.on('error', (error) => this.close(`socket error: ${error.message}`));
    socket.on('close', () => this.close('connection lost'));
    this.armIdle();
  }

  /** Closes the connection (the line being handled still finishes), and resolves when nothing of it runs any more. */
  async stop(): Promise<void> {
    this.close('server stopping');
    await this.work;
  }

  /**
   * Handles every whole line received, then listens again; after the client's end, closes. Bytes
   * of an unfinished line leave the idle clock running: only whole lines reset it.
   */
  private drain(): void {
    if (this.handling || this.closed) return;
    let line: Buffer | undefined;
    try {
      line = this.reader.next();
    } catch (error) {
      this.fail(error);
      return;
    }
    if (line === undefined) {
      if (this.ended) this.close(this.reader.partial ? 'client disconnected within a line' : 'client disconnected');
      return;
    }
    this.handling = true;
    clearTimeout(this.idle);
    this.socket.pause();
    this.work = (async () => {
      try {
        for (; line !== undefined && !this.closed; line = this.reader.next()) await this.handle(line);
      } catch (error) {
        this.fail(error);
      } finally {
        this.handling = false;
      }
      if (this.closed) return;
      this.socket.resume();
      this.armIdle();
      // The client's end came while lines were handled: what it sent before is handled, then it is closed.
      if (this.ended) this.drain();
    })();
  }

  private async handle(bytes: Buffer): Promise<void> {
    // latin1 maps each byte to one character: the MAC is checked over exactly the bytes received.
    const line = bytes.toString('latin1').replace(trailingWhitespace, '');
    const space = line.indexOf(' ');
    if (space === -1) throw refuse(`a line without a space: ${quoted(line)}`);
    const type = line.slice(0, space);
    if (type === 'h') {
      await handleHello(this.state, this.context, line.slice(space + 1));
      this.logger = this.connectionLogger.child({ clientId: this.state.keyed!.client.clientId });
      this.logger.debug('rrduino client said hello');
    } else if (type === 'u') {
      await handleUpdate(this.state, this.context, line);
    } else {
      throw refuse(`unknown message type ${quoted(type)}`);
    }
  }

  /** The idle clock runs only while the server waits for the client: not while a line is being stored. */
  private armIdle(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(() => this.close(this.reader.partial ? 'idle timeout within an unfinished line' : 'idle timeout'), this.idleTimeoutMs);
  }

  private fail(error: unknown): void {
    if (error instanceof Refusal || error instanceof LineTooLongError) this.close(error.message);
    else {
      this.logger.warn({ err: error }, 'rrduino connection failed');
      this.close('server error');
    }
  }

  private close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.idle);
    this.socket.destroy();
    this.logger.info({ reason }, 'rrduino connection closed');
  }
}
