import { WebSocket, type RawData } from 'ws';
import { newId } from '../core/ids.ts';
import type { Logger } from '../log.ts';
import type { ConnectionKind, HubMetrics } from './metrics.ts';

export const closeCodes = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  invalidData: 1007,
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
  tryAgainLater: 1013,
  /** A newer connection of the same device or channel took over. */
  replaced: 4000,
  unauthenticated: 4001,
  forbidden: 4003,
  notFound: 4004,
  /** Its send queue was full. */
  slowConsumer: 4008,
  /** Admission denied. */
  denied: 4010,
} as const;

export interface SocketLimits {
  maxFrameBytes: number;
  messagesPerMinute: number;
  sendQueueBytes: number;
  pingIntervalMs: number;
  missedPongs: number;
}

export interface FleetSocketOptions {
  endpoint: string;
  kind: ConnectionKind;
  remoteAddress: string;
  limits: SocketLimits;
  metrics: HubMetrics;
  logger: Logger;
}

type Handler<T> = (value: T) => void | Promise<void>;

/** How long a peer has to answer our close frame before the connection is cut. */
const closeTimeoutMs = 2000;
/** The code a connection that ended without a close handshake reports (never sent on the wire). */
const abnormalClosure = 1006;
/** Longest close reason a close frame carries, in bytes. */
const maxReasonBytes = 123;
/** Frames waiting for a busy handler beyond which reading from the peer stops until it catches up. */
const inboxHighWater = 64;

/** Close codes of protocol errors `ws` detects in what the peer sent (the rest are 1002). */
const protocolErrorCodes: Record<string, number> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: closeCodes.tooBig,
  WS_ERR_INVALID_UTF8: closeCodes.invalidData,
};

/**
 * One WebSocket connection with the limits every endpoint shares: message size and rate, a bounded
 * send queue, keepalive, and frames handled one at a time in order. Endpoints see text and binary
 * messages and a single close notification, never `ws` itself.
 */
export class FleetSocket {
  readonly id = newId('ws');
  readonly endpoint: string;
  readonly remoteAddress: string;
  readonly #ws: WebSocket;
  readonly #kind: ConnectionKind;
  readonly #limits: SocketLimits;
  readonly #metrics: HubMetrics;
  readonly #logger: Logger;
  #state: 'open' | 'closing' | 'closed' = 'open';
  /** Set when this side ended the connection: what onClose reports, whatever the peer answered. */
  #closedWith: { code: number; reason: string } | undefined;
  #textHandler: Handler<string> | undefined;
  #binaryHandler: Handler<Buffer> | undefined;
  readonly #closeHandlers: Array<(code: number, reason: string) => void> = [];
  #closeResult: { code: number; reason: string } | undefined;
  readonly #inbox: Array<string | Buffer> = [];
  #inboxBytes = 0;
  #handling = false;
  /** Reading stopped because the handler fell behind (not the peer's fault, so keepalive waits too). */
  #paused = false;
  #tokens: number;
  #refilledAt = Date.now();
  #missedPongs = 0;
  readonly #pingTimer: NodeJS.Timeout;
  #closeTimer: NodeJS.Timeout | undefined;

  constructor(ws: WebSocket, options: FleetSocketOptions) {
    this.#ws = ws;
    this.endpoint = options.endpoint;
    this.remoteAddress = options.remoteAddress;
    this.#kind = options.kind;
    this.#limits = options.limits;
    this.#metrics = options.metrics;
    this.#logger = options.logger.child({ socket: this.id, endpoint: this.endpoint });
    this.#tokens = options.limits.messagesPerMinute;
    this.#metrics.connectionOpened(this.endpoint, this.#kind);

    ws.on('message', (data, isBinary) => this.#received(data, isBinary));
    ws.on('pong', () => {
      this.#missedPongs = 0;
    });
    ws.on('error', (error: Error & { code?: string }) => this.#failed(error));
    ws.on('close', (code, reason) => this.#closed(code, reason.toString()));
    this.#pingTimer = setInterval(() => this.#keepalive(), options.limits.pingIntervalMs);
    this.#pingTimer.unref();
    this.#logger.debug({ remoteAddress: this.remoteAddress }, 'WebSocket connected');
  }

  get open(): boolean {
    return this.#state === 'open' && this.#ws.readyState === WebSocket.OPEN;
  }

  /**
   * Queues one text frame (never fragmented). Returns false, and closes the socket with 4008, when
   * more than sendQueueBytes are waiting; false too when the socket is closing/closed.
   */
  send(text: string): boolean {
    return this.#enqueue(text, Buffer.byteLength(text), false);
  }

  /** Queues one binary frame, for endpoints that relay binary messages; otherwise like send(). */
  sendBinary(data: Buffer): boolean {
    return this.#enqueue(data, data.length, true);
  }

  /** Close frame with code and reason (reason cut to 123 bytes); terminates if the peer does not finish the close in a few s. */
  close(code: number, reason: string): void {
    if (this.#state !== 'open') return;
    this.#closing(code, reason);
    try {
      this.#ws.close(code, cutReason(reason));
    } catch (error) {
      // An invalid close code: nothing to tell the peer, just end.
      this.#logger.error({ err: error, code }, 'WebSocket close failed');
      this.#ws.terminate();
    }
  }

  /** Text frames, in order. A handler that throws or rejects is logged and the socket closed with 1011. */
  onText(handler: (text: string) => void | Promise<void>): void {
    this.#textHandler = handler;
    void this.#handle();
  }

  /** Binary frames; without a handler a binary frame closes the socket with 1003 'binary frames are not accepted'. */
  onBinary(handler: (data: Buffer) => void | Promise<void>): void {
    this.#binaryHandler = handler;
    void this.#handle();
  }

  /** Once, after the socket closed for any reason (including keepalive and limits). */
  onClose(handler: (code: number, reason: string) => void): void {
    const result = this.#closeResult;
    if (result) queueMicrotask(() => this.#notifyClosed(handler, result));
    else this.#closeHandlers.push(handler);
  }

  #enqueue(data: string | Buffer, size: number, binary: boolean): boolean {
    if (!this.open) return false;
    const waiting = this.#ws.bufferedAmount;
    // A peer that has read everything so far is keeping up, even if this one message is larger than the queue.
    if (waiting > 0 && waiting + size > this.#limits.sendQueueBytes) {
      this.#logger.info({ waiting, remoteAddress: this.remoteAddress }, 'closing a WebSocket that does not read what is sent to it');
      this.#metrics.slowConsumerDisconnect(this.endpoint);
      this.close(closeCodes.slowConsumer, 'send queue full');
      return false;
    }
    this.#ws.send(data, { binary });
    this.#metrics.messageOut(this.endpoint);
    return true;
  }

  #received(data: RawData, isBinary: boolean): void {
    if (this.#state !== 'open') return;
    this.#metrics.messageIn(this.endpoint);
    if (!this.#takeToken()) {
      this.#refuse('rate', closeCodes.policy, 'message rate limited');
      return;
    }
    // With the default binaryType, `ws` hands over one Buffer per message, fragments joined.
    const bytes = data as Buffer;
    if (isBinary && !this.#binaryHandler) {
      this.#refuse('binary', closeCodes.unsupportedData, 'binary frames are not accepted');
      return;
    }
    this.#inbox.push(isBinary ? bytes : bytes.toString('utf8'));
    this.#inboxBytes += bytes.length;
    // Frames keep arriving while a handler awaits: past a bound, stop reading so the peer's own buffers fill.
    if (!this.#paused && (this.#inbox.length >= inboxHighWater || this.#inboxBytes > this.#limits.maxFrameBytes)) {
      this.#paused = true;
      this.#ws.pause();
    }
    void this.#handle();
  }

  /** Hands waiting frames to the handlers one at a time; a text frame waits until a text handler is set. */
  async #handle(): Promise<void> {
    if (this.#handling) return;
    this.#handling = true;
    try {
      while (this.#state === 'open') {
        const frame = this.#inbox[0];
        if (frame === undefined) break;
        const handler = typeof frame === 'string' ? this.#textHandler : this.#binaryHandler;
        if (!handler) break;
        this.#inbox.shift();
        this.#inboxBytes -= typeof frame === 'string' ? Buffer.byteLength(frame) : frame.length;
        if (this.#paused && this.#inbox.length < inboxHighWater / 2 && this.#inboxBytes <= this.#limits.maxFrameBytes / 2) this.#resume();
        // Handlers are typed for either; the frame's type picked the one that takes it.
        const result = (handler as Handler<string | Buffer>)(frame);
        if (result) await result;
      }
    } catch (error) {
      this.#logger.error({ err: error }, 'WebSocket message handler failed');
      this.close(closeCodes.internal, 'internal error');
    } finally {
      this.#handling = false;
    }
  }

  /** Token bucket holding a minute's worth of messages, refilled continuously. */
  #takeToken(): boolean {
    const now = Date.now();
    const perMinute = this.#limits.messagesPerMinute;
    this.#tokens = Math.min(perMinute, this.#tokens + ((now - this.#refilledAt) * perMinute) / 60_000);
    this.#refilledAt = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #keepalive(): void {
    if (this.#state !== 'open' || this.#paused || this.#ws.readyState !== WebSocket.OPEN) return;
    if (this.#missedPongs >= this.#limits.missedPongs) {
      this.#logger.info({ remoteAddress: this.remoteAddress }, 'WebSocket peer stopped answering pings');
      this.#metrics.refused(this.endpoint, 'keepalive');
      this.#closing(abnormalClosure, 'keepalive timeout');
      this.#ws.terminate();
      return;
    }
    this.#missedPongs += 1;
    this.#ws.ping();
  }

  #refuse(reason: 'rate' | 'binary', code: number, text: string): void {
    this.#logger.info({ remoteAddress: this.remoteAddress, code }, `closing WebSocket: ${text}`);
    this.#metrics.refused(this.endpoint, reason);
    this.close(code, text);
  }

  /** Errors `ws` reports: a protocol violation by the peer (it closes the connection itself) or a broken socket. */
  #failed(error: Error & { code?: string }): void {
    const code = error.code ?? '';
    if (!code.startsWith('WS_ERR_')) {
      this.#logger.debug({ err: error }, 'WebSocket connection failed');
      return;
    }
    if (this.#state !== 'open') return;
    if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.#metrics.refused(this.endpoint, 'size');
    this.#logger.info({ remoteAddress: this.remoteAddress, error: error.message }, 'WebSocket peer broke the protocol');
    this.#closing(protocolErrorCodes[code] ?? 1002, error.message);
  }

  /** This side ends the connection: nothing more is handled, and it is cut if the close does not complete. */
  #closing(code: number, reason: string): void {
    this.#state = 'closing';
    this.#closedWith = { code, reason };
    this.#inbox.length = 0;
    this.#inboxBytes = 0;
    // The peer's answer to the close frame must be read.
    if (this.#paused) this.#resume();
    this.#closeTimer = setTimeout(() => this.#ws.terminate(), closeTimeoutMs);
    this.#closeTimer.unref();
  }

  #resume(): void {
    this.#paused = false;
    // Pongs were not read meanwhile: the peer gets a fresh allowance.
    this.#missedPongs = 0;
    this.#ws.resume();
  }

  #closed(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearInterval(this.#pingTimer);
    clearTimeout(this.#closeTimer);
    this.#inbox.length = 0;
    this.#metrics.connectionClosed(this.endpoint, this.#kind);
    const result = this.#closedWith ?? { code, reason };
    this.#closeResult = result;
    this.#logger.debug({ code: result.code, reason: result.reason, remoteAddress: this.remoteAddress }, 'WebSocket closed');
    for (const handler of this.#closeHandlers.splice(0)) this.#notifyClosed(handler, result);
  }

  #notifyClosed(handler: (code: number, reason: string) => void, result: { code: number; reason: string }): void {
    try {
      handler(result.code, result.reason);
    } catch (error) {
      this.#logger.error({ err: error }, 'WebSocket close handler failed');
    }
  }
}

/** The reason cut to what a close frame holds, never in the middle of a character. */
function cutReason(reason: string): string {
  const bytes = Buffer.from(reason);
  if (bytes.length <= maxReasonBytes) return reason;
  let end = maxReasonBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end -= 1;
  return bytes.subarray(0, end).toString('utf8');
}
