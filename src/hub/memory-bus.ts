import type { Logger } from '../log.ts';
import type { Bus, BusHandler, BusSubscription, JsonValue, RequestOptions, SubscribeOptions } from './bus.ts';
import { busClosed, checkRequestOptions, noReplyInTime, noResponders } from './bus-errors.ts';
import { dispatch, openReply, RunningHandlers, type DispatchContext, type Respond } from './dispatch.ts';
import { decodePayload, defaultMaxPayload, encodePayload } from './payload.ts';
import { checkQueueName, patternTokens, subjectMatches, subjectTokens } from './subject.ts';

/** A message on its way to one subscription, kept as JSON text until delivery so each subscriber parses its own copy. */
interface Delivery {
  subject: string;
  text: string;
  respond?: Respond;
}

interface LocalSubscription {
  pattern: string[];
  handler: BusHandler;
  queue?: string;
  pending: Delivery[];
  scheduled: boolean;
  active: boolean;
}

/**
 * The bus of a single node: subscriptions in this process, matched by walking them all (a node
 * holds few patterns; a subject tree would pay off with many). Payloads go through JSON text exactly
 * as over NATS, and deliveries run on a later turn of the event loop, never inside publish().
 */
export class MemoryBus implements Bus {
  readonly kind = 'memory';
  readonly maxPayload = defaultMaxPayload;
  readonly #subscriptions = new Set<LocalSubscription>();
  readonly #handlers = new RunningHandlers();
  /** Ends each request still waiting for a reply, when the bus closes. */
  readonly #waitingRequests = new Set<() => void>();
  readonly #context: DispatchContext;
  #closing: Promise<void> | undefined;

  constructor(logger: Logger) {
    this.#context = { logger, maxPayload: this.maxPayload };
  }

  publish(subject: string, payload: unknown): void {
    this.#checkOpen();
    const tokens = subjectTokens(subject);
    this.#route(subject, tokens, encodePayload(payload, this.maxPayload));
  }

  async subscribe(pattern: string, handler: BusHandler, options: SubscribeOptions = {}): Promise<BusSubscription> {
    this.#checkOpen();
    const subscription: LocalSubscription = { pattern: patternTokens(pattern), handler, pending: [], scheduled: false, active: true };
    if (options.queue !== undefined) {
      checkQueueName(options.queue);
      subscription.queue = options.queue;
    }
    this.#subscriptions.add(subscription);
    return {
      unsubscribe: () => {
        subscription.active = false;
        subscription.pending = [];
        this.#subscriptions.delete(subscription);
      },
    };
  }

  async request(subject: string, payload: unknown, options: RequestOptions): Promise<JsonValue> {
    this.#checkOpen();
    checkRequestOptions(options);
    const tokens = subjectTokens(subject);
    const text = encodePayload(payload, this.maxPayload);
    return new Promise<JsonValue>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const end = (outcome: () => void) => {
        if (!this.#waitingRequests.delete(cancel)) return;
        clearTimeout(timer);
        outcome();
      };
      const cancel = () => end(() => reject(busClosed()));
      this.#waitingRequests.add(cancel);
      const respond: Respond = (reply) =>
        end(() => {
          try {
            resolve(openReply(reply, subject));
          } catch (error) {
            reject(error);
          }
        });
      if (this.#route(subject, tokens, text, respond) === 0) return end(() => reject(noResponders(subject)));
      timer = setTimeout(() => end(() => reject(noReplyInTime(subject, options.timeoutMs))), options.timeoutMs);
    });
  }

  close(): Promise<void> {
    this.#closing ??= this.#drain();
    return this.#closing;
  }

  async #drain(): Promise<void> {
    while ([...this.#subscriptions].some((s) => s.pending.length > 0)) await new Promise((resolve) => setImmediate(resolve));
    await this.#handlers.settle(this.#context.logger);
    for (const cancel of [...this.#waitingRequests]) cancel();
    this.#subscriptions.clear();
  }

  #checkOpen(): void {
    if (this.#closing) throw busClosed();
  }

  /** Queues the message for every matching subscription, and one member of each queue group; returns how many. */
  #route(subject: string, tokens: string[], text: string, respond?: Respond): number {
    const targets: LocalSubscription[] = [];
    const groups = new Map<string, LocalSubscription[]>();
    for (const subscription of this.#subscriptions) {
      if (!subjectMatches(subscription.pattern, tokens)) continue;
      if (subscription.queue === undefined) {
        targets.push(subscription);
        continue;
      }
      const members = groups.get(subscription.queue);
      if (members) members.push(subscription);
      else groups.set(subscription.queue, [subscription]);
    }
    // NATS picks a queue group member at random too, so nothing may rely on a rotation.
    for (const members of groups.values()) targets.push(members[Math.floor(Math.random() * members.length)]!);
    for (const target of targets) this.#enqueue(target, { subject, text, respond });
    return targets.length;
  }

  #enqueue(subscription: LocalSubscription, delivery: Delivery): void {
    subscription.pending.push(delivery);
    if (subscription.scheduled) return;
    subscription.scheduled = true;
    setImmediate(() => this.#deliver(subscription));
  }

  /** Delivers what was pending when the turn began; what handlers publish meanwhile waits for the next turn, so I/O is not starved. */
  #deliver(subscription: LocalSubscription): void {
    subscription.scheduled = false;
    const batch = subscription.pending;
    subscription.pending = [];
    for (const { subject, text, respond } of batch) {
      if (!subscription.active) return;
      this.#handlers.track(dispatch(subscription.handler, { subject, payload: decodePayload(text) }, respond, this.#context));
    }
  }
}
