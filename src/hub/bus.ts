/** A value that survives a trip through JSON unchanged: what travels on the bus. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export type BusKind = 'memory' | 'nats';

export interface BusMessage {
  /** The subject it was published on (not the pattern that matched it). */
  subject: string;
  /** The subscriber's own copy: changing it changes nothing elsewhere. */
  payload: JsonValue;
}

/**
 * Receives the messages of a subscription, one call per message in publish order. A returned value
 * (or the value of a returned promise) answers a request; `undefined` does not answer, so that of
 * several subscribers only the one concerned (the node holding a device's socket) replies, and `null`
 * is an answer. A thrown error is logged and, for a request, sent back to the requester.
 * The next message is delivered without waiting for a returned promise.
 */
export type BusHandler = (message: BusMessage) => unknown;

export interface SubscribeOptions {
  /** Subscribers sharing a queue group name take turns: each message goes to one of them. */
  queue?: string;
}

export interface RequestOptions {
  /** How long to wait for the first reply. */
  timeoutMs: number;
}

export interface BusSubscription {
  /** Stops deliveries at once; messages not yet handed to the handler are dropped. */
  unsubscribe(): void;
}

/**
 * Messages between connections, within a node and between nodes: device events, calls relayed to
 * the node holding a device's socket, cache invalidations. One interface, two implementations chosen
 * by the `bus` URL: in-process (`memory`) and NATS. Both copy payloads as JSON and deliver
 * asynchronously, so code behaves the same on one node as in a cluster.
 *
 * Subjects are dot-separated tokens (`device.42.event`); a subscription pattern may use `*` for one
 * token and `>` as its last token for one or more. Anything invalid is refused with a FleetError:
 * `bad_request` (subject, payload not a JSON value), `payload_too_large` (above `maxPayload`),
 * `unavailable` (closed, disconnected, nobody listening, no reply in time; `details.reason` says which).
 *
 * Delivery is at most once, as in NATS: a message in flight when a node loses its NATS server may
 * be lost. Where an outcome matters, use a request, which fails instead.
 */
export interface Bus {
  readonly kind: BusKind;
  /** Largest payload accepted, in bytes of its JSON text. */
  readonly maxPayload: number;
  /** Sends `payload` (a JSON value) to every matching subscription; returns once it is on its way. */
  publish(subject: string, payload: unknown): void;
  /** Resolves once the bus has registered the subscription, so messages published afterwards reach it. */
  subscribe(pattern: string, handler: BusHandler, options?: SubscribeOptions): Promise<BusSubscription>;
  /** Publishes `payload` and resolves with the first answer of a subscriber. */
  request(subject: string, payload: unknown, options: RequestOptions): Promise<JsonValue>;
  /** Refuses new work, delivers what is pending, waits (a while) for running handlers, then disconnects. */
  close(): Promise<void>;
}
