import { errorCodes, FleetError, type ErrorCode } from '../core/errors.ts';
import type { Logger } from '../log.ts';
import type { BusHandler, BusMessage, JsonValue } from './bus.ts';
import { decodePayload, encodePayload } from './payload.ts';

/**
 * The reply to a request as it travels: the handler's answer, or the error it threw, so that a
 * failing handler fails the request at once instead of leaving it to time out.
 */
type ReplyEnvelope = { result: JsonValue } | { error: { code: ErrorCode; message: string; details?: unknown; retryAfter?: number } };

/** Sends the JSON text of a reply envelope back to the requester. */
export type Respond = (text: string) => void;

export interface DispatchContext {
  logger: Logger;
  maxPayload: number;
}

/**
 * Hands one message to a handler and, when the message is a request, sends back what the handler
 * returned or threw. Nothing the handler does escapes: a broken handler must not stop the bus.
 * Returns a promise when the handler answered with one, so closing can wait for it.
 */
export function dispatch(handler: BusHandler, message: BusMessage, respond: Respond | undefined, context: DispatchContext): Promise<void> | undefined {
  const failed = (error: unknown) => {
    context.logger.error({ err: error, subject: message.subject }, 'bus handler failed');
    if (respond) send(respond, errorEnvelope(error, message.subject), message.subject, context);
  };
  const answer = (value: unknown) => {
    if (respond && value !== undefined) send(respond, { result: value as JsonValue }, message.subject, context);
  };
  let outcome: unknown;
  try {
    outcome = handler(message);
  } catch (error) {
    failed(error);
    return undefined;
  }
  if (isThenable(outcome)) return Promise.resolve(outcome).then(answer, failed);
  answer(outcome);
  return undefined;
}

function send(respond: Respond, envelope: ReplyEnvelope, subject: string, context: DispatchContext): void {
  let text: string;
  try {
    text = encodePayload(envelope, context.maxPayload, 'reply');
  } catch (error) {
    context.logger.error({ err: error, subject }, 'bus handler answered with a value that cannot be sent');
    text = JSON.stringify(errorEnvelope(error, subject));
  }
  try {
    respond(text);
  } catch (error) {
    context.logger.warn({ err: error, subject }, 'bus reply could not be sent');
  }
}

function errorEnvelope(error: unknown, subject: string): ReplyEnvelope {
  // Details travel too: a device's own error code must reach the caller on another node.
  if (error instanceof FleetError) return { error: { code: error.code, message: error.message, details: error.details, retryAfter: error.retryAfter } };
  // The message of an unexpected error may expose internals; it is in this node's log instead.
  return { error: { code: 'internal', message: `A handler of ${subject} failed` } };
}

/** The answer inside a reply envelope, or the FleetError it carries. */
export function openReply(text: string, subject: string): JsonValue {
  let envelope: unknown;
  try {
    envelope = decodePayload(text);
  } catch (error) {
    throw new FleetError('internal', `The reply on ${subject} is not JSON`, { cause: error });
  }
  if (typeof envelope === 'object' && envelope !== null) {
    if ('result' in envelope) return envelope.result as JsonValue;
    if ('error' in envelope && typeof envelope.error === 'object' && envelope.error !== null) {
      const { code, message, details, retryAfter } = envelope.error as { code?: unknown; message?: unknown; details?: unknown; retryAfter?: unknown };
      const known = typeof code === 'string' && Object.hasOwn(errorCodes, code);
      throw new FleetError(known ? (code as ErrorCode) : 'internal', typeof message === 'string' ? message : `The request on ${subject} failed`, {
        details: known ? details : undefined,
        retryAfter: typeof retryAfter === 'number' ? retryAfter : undefined,
      });
    }
  }
  throw new FleetError('internal', `The reply on ${subject} is not a bus reply`);
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';

/** How long closing a bus waits for handlers still working, so that a hung one cannot hold up a shutdown. */
const handlerDrainMs = 5_000;

/** Handlers still working on a message: closing waits for them, up to a limit. */
export class RunningHandlers {
  readonly #running = new Set<Promise<void>>();

  track(work: Promise<void> | undefined): void {
    if (!work) return;
    this.#running.add(work);
    void work.finally(() => this.#running.delete(work));
  }

  /** Resolves when every tracked handler has finished, or after a while, logging how many were left. */
  async settle(logger: Logger): Promise<void> {
    if (this.#running.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), handlerDrainMs)));
    const outcome = await Promise.race([Promise.allSettled(this.#running).then(() => 'done' as const), expired]);
    clearTimeout(timer);
    if (outcome === 'expired') logger.warn({ handlers: this.#running.size }, 'bus closed with handlers still running');
  }
}
