import { FleetError } from '../../core/errors.ts';
import { requestObject, type Params, type RequestObject } from './messages.ts';
import type { MalformedResponse, ResponseMessage } from './parse.ts';

export interface OutgoingCallsOptions {
  /** Writes one request to the device; the transport adds members of its own (Shelly's `src`). */
  send: (request: RequestObject) => void | Promise<void>;
  /** How long a call waits for its response, in milliseconds, unless the call says otherwise. */
  timeoutMs: number;
  /**
   * Calls waiting at once; more are refused at once rather than queued, so that a device that stops
   * answering holds a bounded number of them. Default 10, as Shelly Fleet Manager does.
   */
  maxPending?: number;
}

interface PendingCall {
  method: string;
  resolve: (result: unknown) => void;
  reject: (error: FleetError) => void;
  timer: NodeJS.Timeout;
}

/**
 * The calls fleetd makes to one device over one socket: ids from a counter of the socket's own,
 * each call waiting for the response with its id until it arrives, times out, or the socket closes.
 */
export class OutgoingCalls {
  private readonly pending = new Map<number, PendingCall>();
  private readonly maxPending: number;
  private nextId = 1;
  private closedWith?: FleetError;

  constructor(private readonly options: OutgoingCallsOptions) {
    this.maxPending = options.maxPending ?? 10;
  }

  /** Calls waiting for their response. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Resolves with the device's result; rejects with a FleetError: `device_error` when the device
   * answers with an error, `device_timeout`, or `unavailable` when the call cannot be sent, too many
   * calls are waiting, or the socket closes.
   */
  call(method: string, params?: Params, options: { timeoutMs?: number } = {}): Promise<unknown> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (this.pending.size >= this.maxPending) {
      return Promise.reject(new FleetError('unavailable', `The device already has ${this.maxPending} calls waiting for an answer`, { details: { method } }));
    }
    const id = this.allocateId();
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.finish(id)?.reject(new FleetError('device_timeout', `The device did not answer ${method} within ${timeoutMs} ms`, { details: { method, timeoutMs } }));
      }, timeoutMs);
      this.pending.set(id, { method, resolve, reject, timer });
      const notSent = (error: unknown) => this.finish(id)?.reject(error instanceof FleetError ? error : new FleetError('unavailable', `${method} could not be sent to the device`, { cause: error }));
      try {
        Promise.resolve(this.options.send(requestObject(id, method, params))).catch(notSent);
      } catch (error) {
        notSent(error);
      }
    });
  }

  /**
   * Hands a response to the call waiting for its id. False when none is: an id fleetd never used,
   * or a call that has timed out already (a late response is dropped).
   */
  settle(message: ResponseMessage | MalformedResponse): boolean {
    const call = typeof message.id === 'number' ? this.finish(message.id) : undefined;
    if (!call) return false;
    if (message.kind === 'malformed_response') {
      call.reject(new FleetError('device_error', `The device answered ${call.method} with a malformed response: ${message.reason}`, { details: { method: call.method, reason: message.reason } }));
    } else if (message.ok) {
      call.resolve(message.result);
    } else {
      const { code, message: text, data } = message.error;
      call.reject(new FleetError('device_error', `${call.method} failed on the device: ${text}`, { details: data === undefined ? { code, message: text } : { code, message: text, data } }));
    }
    return true;
  }

  /** The socket is gone: every waiting call fails with `error`, and so does every later one. */
  close(error = new FleetError('unavailable', 'The device disconnected')): void {
    this.closedWith = error;
    for (const id of [...this.pending.keys()]) this.finish(id)?.reject(error);
  }

  private finish(id: number): PendingCall | undefined {
    const call = this.pending.get(id);
    if (!call) return undefined;
    clearTimeout(call.timer);
    this.pending.delete(id);
    return call;
  }

  /** Ids stay safe integers, and one still waiting is never given out again. */
  private allocateId(): number {
    let id = this.nextId;
    while (this.pending.has(id)) id = next(id);
    this.nextId = next(id);
    return id;
  }
}

const next = (id: number) => (id >= Number.MAX_SAFE_INTEGER ? 1 : id + 1);
