import { connect, DebugEvents, ErrorCode, Events, type Msg, type NatsConnection, type Status, type Subscription } from 'nats';
import { FleetError } from '../core/errors.ts';
import type { Logger } from '../log.ts';
import type { Bus, BusHandler, BusSubscription, JsonValue, RequestOptions, SubscribeOptions } from './bus.ts';
import { busClosed, busDisconnected, checkRequestOptions, noReplyInTime, noResponders } from './bus-errors.ts';
import { dispatch, openReply, RunningHandlers, type DispatchContext, type Respond } from './dispatch.ts';
import { decodePayload, defaultMaxPayload, encodePayload } from './payload.ts';
import { checkQueueName, patternTokens, subjectTokens } from './subject.ts';

const utf8 = { encoder: new TextEncoder(), decoder: new TextDecoder() };

/** How each connection event is logged: losing the server matters, routine pings do not. */
const statusLevels: Record<string, 'error' | 'warn' | 'info' | 'debug'> = {
  [Events.Disconnect]: 'warn',
  [Events.Reconnect]: 'info',
  [Events.Update]: 'info',
  [Events.LDM]: 'warn',
  [Events.Error]: 'error',
  [DebugEvents.Reconnecting]: 'debug',
  [DebugEvents.PingTimer]: 'debug',
  [DebugEvents.StaleConnection]: 'warn',
  [DebugEvents.ClientInitiatedReconnect]: 'info',
};

/** Connects to the first reachable of `servers` (`nats://host:port`); refuses with `unavailable` when none answers. */
export async function connectNatsBus(servers: string[], logger: Logger): Promise<NatsBus> {
  let connection: NatsConnection;
  try {
    connection = await connect({
      servers,
      name: 'fleetd',
      // A node never gives up on the cluster: it keeps its devices and retries until NATS is back.
      maxReconnectAttempts: -1,
      // The default (two minutes, twice) would leave a node deaf for minutes after a silent network cut.
      pingInterval: 10_000,
      maxPingOut: 3,
    });
  } catch (error) {
    throw new FleetError('unavailable', `NATS is not reachable at ${servers.join(',')}: ${(error as Error).message}`, { cause: error });
  }
  logger.info({ server: connection.getServer() }, 'NATS connected');
  return new NatsBus(connection, logger);
}

/**
 * The bus of a cluster: every node connects to NATS, which routes subjects with the same semantics
 * as the in-process bus. Payloads are JSON text; a request's reply is a small envelope carrying the
 * answer or the handler's error. Reconnection is the client's; this only logs it.
 */
export class NatsBus implements Bus {
  readonly kind = 'nats';
  readonly #connection: NatsConnection;
  readonly #logger: Logger;
  readonly #subscriptions = new Set<Subscription>();
  readonly #handlers = new RunningHandlers();
  #closing: Promise<void> | undefined;
  /** False between a disconnect and the reconnect, while the client would silently discard what is sent. */
  #connected = true;

  constructor(connection: NatsConnection, logger: Logger) {
    this.#connection = connection;
    this.#logger = logger;
    void this.#watchStatus();
    void connection.closed().then((error) => {
      if (error) logger.error({ err: error }, 'NATS connection closed by an error');
      else logger.info('NATS connection closed');
    });
  }

  /** The max_payload of the server this node is connected to now (servers of a cluster may differ). */
  get maxPayload(): number {
    return this.#connection.info?.max_payload ?? defaultMaxPayload;
  }

  publish(subject: string, payload: unknown): void {
    this.#checkConnected();
    subjectTokens(subject);
    const text = encodePayload(payload, this.maxPayload);
    try {
      this.#connection.publish(subject, utf8.encoder.encode(text));
    } catch (error) {
      throw this.#natsFailure(error);
    }
  }

  async subscribe(pattern: string, handler: BusHandler, options: SubscribeOptions = {}): Promise<BusSubscription> {
    this.#checkOpen();
    patternTokens(pattern);
    if (options.queue !== undefined) checkQueueName(options.queue);
    let subscription: Subscription;
    try {
      subscription = this.#connection.subscribe(pattern, {
        queue: options.queue,
        callback: (error, message) => this.#receive(handler, error, message),
      });
      this.#subscriptions.add(subscription);
      void subscription.closed.then(() => this.#subscriptions.delete(subscription));
    } catch (error) {
      throw this.#natsFailure(error);
    }
    // The round trip makes the server hold the subscription before this resolves. While
    // disconnected there is no server to ask: the client subscribes again when it reconnects.
    if (this.#connected) {
      await this.#connection.flush().catch((error: unknown) => {
        subscription.unsubscribe();
        throw this.#natsFailure(error);
      });
    }
    return {
      unsubscribe: () => {
        if (!subscription.isClosed()) subscription.unsubscribe();
      },
    };
  }

  async request(subject: string, payload: unknown, options: RequestOptions): Promise<JsonValue> {
    this.#checkConnected();
    checkRequestOptions(options);
    subjectTokens(subject);
    const text = encodePayload(payload, this.maxPayload);
    let reply: Msg;
    try {
      reply = await this.#connection.request(subject, utf8.encoder.encode(text), { timeout: options.timeoutMs });
    } catch (error) {
      // Closing the connection ends waiting requests with a timeout error of its own.
      if (this.#closing || this.#connection.isClosed()) throw busClosed();
      const code = (error as { code?: string }).code;
      if (code === ErrorCode.NoResponders) throw noResponders(subject);
      if (code === ErrorCode.Timeout) throw noReplyInTime(subject, options.timeoutMs);
      throw this.#natsFailure(error);
    }
    return openReply(utf8.decoder.decode(reply.data), subject);
  }

  close(): Promise<void> {
    this.#closing ??= this.#drain();
    return this.#closing;
  }

  async #drain(): Promise<void> {
    if (this.#connection.isClosed()) return;
    if (!this.#connected) {
      // Without a server nothing can be flushed, and draining would wait for NATS to come back.
      await this.#handlers.settle(this.#logger);
      await this.#connection.close();
      return;
    }
    // Subscriptions first, so handlers get what is already on its way and their replies can still be sent.
    await Promise.allSettled([...this.#subscriptions].map((s) => s.drain()));
    await this.#handlers.settle(this.#logger);
    await this.#connection.drain().catch((error: unknown) => this.#logger.warn({ err: error }, 'NATS drain failed'));
  }

  #checkOpen(): void {
    if (this.#closing || this.#connection.isClosed()) throw busClosed();
  }

  #checkConnected(): void {
    this.#checkOpen();
    if (!this.#connected) throw busDisconnected();
  }

  #receive(handler: BusHandler, error: Error | null, message: Msg): void {
    if (error) {
      this.#logger.warn({ err: error, subject: message?.subject }, 'NATS subscription error');
      return;
    }
    let payload: JsonValue;
    try {
      payload = decodePayload(utf8.decoder.decode(message.data));
    } catch {
      // Only fleetd should publish here; something else did, and a handler cannot make sense of it.
      this.#logger.warn({ subject: message.subject, bytes: message.data.length }, 'bus message is not JSON: dropped');
      return;
    }
    const respond: Respond | undefined = message.reply ? (text) => void message.respond(utf8.encoder.encode(text)) : undefined;
    const context: DispatchContext = { logger: this.#logger, maxPayload: this.maxPayload };
    this.#handlers.track(dispatch(handler, { subject: message.subject, payload }, respond, context));
  }

  async #watchStatus(): Promise<void> {
    for await (const status of this.#connection.status()) {
      if (status.type === Events.Disconnect) this.#connected = false;
      if (status.type === Events.Reconnect) this.#connected = true;
      const level = statusLevels[status.type] ?? 'info';
      this.#logger[level]({ event: status.type, data: statusData(status) }, `NATS ${status.type}`);
    }
  }

  #natsFailure(error: unknown): FleetError {
    if (error instanceof FleetError) return error;
    const code = (error as { code?: string }).code;
    if (code === ErrorCode.ConnectionClosed || code === ErrorCode.ConnectionDraining) return busClosed();
    if (code === ErrorCode.MaxPayloadExceeded) return new FleetError('payload_too_large', `The bus payload is above the limit of ${this.maxPayload} bytes`);
    return new FleetError('unavailable', `NATS refused: ${(error as Error).message}`, { cause: error });
  }
}

function statusData(status: Status): unknown {
  return typeof status.data === 'object' ? { added: status.data.added, deleted: status.data.deleted } : status.data;
}
