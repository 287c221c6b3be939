import { Type } from 'typebox';
import { can, isSystemAdmin, type Principal } from '../../core/access.ts';
import { EventFilterSchema, filterEvent, type DeviceFacts, type EventFilter } from '../../core/event-filter.ts';
import { badRequest, FleetError } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { HubEvent } from '../../hub/events.ts';
import type { Hub } from '../../hub/hub.ts';
import { closeCodes } from '../../hub/socket.ts';
import type { Logger } from '../../log.ts';
import type { Dispatcher } from '../jsonrpc/dispatcher.ts';
import type { ClientContext } from './dispatcher.ts';
import { orgOf, watchableOrgIds } from './org.ts';

/** Most subscriptions one connection holds. */
export const maxSubscriptions = 100;
/** Methods that need a connection to send events on; over HTTP they are an invalid request. */
export const webSocketOnlyMethods: ReadonlySet<string> = new Set(['Subscribe', 'Unsubscribe']);
export const webSocketOnlyMessage = 'Subscriptions need a WebSocket connection: use /api/ws';

/** How long what a filter asks of a device (tags, groups) is reused before it is read again. */
const factsTtlMs = 5_000;
const maxFactsEntries = 1_000;
/**
 * Events waiting to be filtered and sent. They pile up only when reading device facts is slower than
 * events arrive; past this the connection cannot keep up and is closed like a slow reader.
 */
const maxQueuedEvents = 10_000;
/**
 * How long after a replay its events are still dropped when they come again live: an event stored
 * before the replay read it may reach this node over the bus a little later.
 */
const replayOverlapMs = 30_000;

interface Subscription {
  id: string;
  /** The organization watched; undefined: every one whose events the principal may see. */
  orgId?: string;
  filter: EventFilter;
  /** Live events held back until the subscription starts (during its replay, until its reply is sent). */
  held?: HubEvent[];
  /** The ids it was replayed, dropped when they arrive live, until `replayedUntil`. */
  replayed?: Set<string>;
  replayedUntil?: number;
}

export interface SubscriptionsOptions {
  /** Sends one text frame; false when the connection cannot take it (it is closing then). */
  send: (text: string) => boolean;
  close: (code: number, reason: string) => void;
  /** Who is connected now: roles change, and the connection re-authenticates from time to time. */
  principal: () => Principal;
  logger: Logger;
}

export interface SubscribeResult {
  subscription: string;
  /** Missed events about to be sent, before the live ones. */
  replayed: number;
  /** The events after lastEventId are no longer all kept: nothing was replayed, the client must read the current state again. */
  resync: boolean;
}

/**
 * The event subscriptions of one client connection. Each event is sent at most once per subscription
 * as `Event` notifications, in the order it arrived, if the principal may see it (device.read in its
 * organization; device.manage for admission events; system admins for events of no organization)
 * and the subscription's filter keeps it.
 */
export class EventSubscriptions {
  readonly #hub: Hub;
  readonly #options: SubscriptionsOptions;
  readonly #subscriptions = new Map<string, Subscription>();
  readonly #facts = new Map<string, { expires: number; facts: Promise<DeviceFacts | undefined> }>();
  #stopListening: (() => void) | undefined;
  /** Events are filtered and sent one after another, so that they go out in order. */
  #queue: Promise<void> = Promise.resolve();
  #queued = 0;
  #closed = false;

  constructor(hub: Hub, options: SubscriptionsOptions) {
    this.#hub = hub;
    this.#options = options;
  }

  /**
   * Adds a subscription; `start` (called once its reply has been sent) sends the replayed events,
   * then those that arrived meanwhile, then it is live. Events are held from the moment it is added,
   * so none falls between the replay and the live stream.
   */
  async subscribe(request: { orgId?: string; filter?: EventFilter; lastEventId?: string }): Promise<{ result: SubscribeResult; start: () => void }> {
    if (this.#closed) throw new FleetError('unavailable', 'The connection is closing');
    if (this.#subscriptions.size >= maxSubscriptions) throw new FleetError('rate_limited', `A connection may hold at most ${maxSubscriptions} subscriptions; unsubscribe from one first`);
    const subscription: Subscription = { id: newId('sub'), orgId: request.orgId, filter: request.filter ?? {}, held: [] };
    this.#subscriptions.set(subscription.id, subscription);
    this.#stopListening ??= this.#hub.events.listen((event) => this.#arrived(event));
    let replay: HubEvent[] = [];
    let resync = false;
    if (request.lastEventId !== undefined) {
      try {
        const principal = this.#options.principal();
        const scope = request.orgId !== undefined ? [request.orgId] : watchableOrgIds(principal);
        const missed = await this.#hub.events.replay(scope, request.lastEventId);
        if (missed.complete) replay = await this.#visibleOf(subscription, missed.events);
        else resync = true;
      } catch (error) {
        this.#subscriptions.delete(subscription.id);
        throw error;
      }
    }
    return { result: { subscription: subscription.id, replayed: replay.length, resync }, start: () => this.#start(subscription, replay) };
  }

  unsubscribe(id: string): boolean {
    return this.#subscriptions.delete(id);
  }

  close(): void {
    this.#closed = true;
    this.#stopListening?.();
    this.#subscriptions.clear();
    this.#facts.clear();
  }

  #start(subscription: Subscription, replay: HubEvent[]): void {
    if (this.#subscriptions.get(subscription.id) !== subscription) return;
    const held = subscription.held ?? [];
    subscription.held = undefined;
    if (replay.length > 0) {
      subscription.replayed = new Set(replay.map((event) => event.id));
      subscription.replayedUntil = Date.now() + replayOverlapMs;
      this.#enqueue(async () => {
        for (const event of replay) if (!this.#notify(subscription, event)) return;
      });
    }
    for (const event of held) this.#enqueue(() => this.#deliver([subscription], event));
  }

  #arrived(event: HubEvent): void {
    const live: Subscription[] = [];
    for (const subscription of this.#subscriptions.values()) {
      if (!subscription.held) live.push(subscription);
      else if (subscription.held.length < maxQueuedEvents) subscription.held.push(event);
      else return this.#tooSlow();
    }
    if (live.length > 0) this.#enqueue(() => this.#deliver(live, event));
  }

  #enqueue(work: () => Promise<void>): void {
    if (this.#queued >= maxQueuedEvents) return this.#tooSlow();
    this.#queued += 1;
    this.#queue = this.#queue
      .then(work)
      .catch((error: unknown) => this.#options.logger.error({ err: error }, 'hub event could not be sent to a client'))
      .finally(() => {
        this.#queued -= 1;
      });
  }

  #tooSlow(): void {
    this.#options.logger.warn('client connection falls behind the hub events; closing it');
    this.#options.close(closeCodes.slowConsumer, 'event queue full');
    this.close();
  }

  /** One live event to the subscriptions that were live when it arrived. */
  async #deliver(subscriptions: Subscription[], event: HubEvent): Promise<void> {
    let facts: Promise<DeviceFacts | undefined> | undefined;
    for (const subscription of subscriptions) {
      if (this.#subscriptions.get(subscription.id) !== subscription || this.#replayedAlready(subscription, event)) continue;
      if (!this.#visible(subscription, event)) continue;
      if (needsFacts(subscription.filter)) facts ??= this.#factsOf(event);
      const seen = filterEvent(subscription.filter, event, facts && (await facts));
      if (seen && !this.#notify(subscription, seen)) return;
    }
  }

  /** The replayed events this subscription sees, as it sees them. */
  async #visibleOf(subscription: Subscription, events: HubEvent[]): Promise<HubEvent[]> {
    const seen: HubEvent[] = [];
    for (const event of events) {
      if (!this.#visible(subscription, event)) continue;
      const filtered = filterEvent(subscription.filter, event, needsFacts(subscription.filter) ? await this.#factsOf(event) : undefined);
      if (filtered) seen.push(filtered);
    }
    return seen;
  }

  #replayedAlready(subscription: Subscription, event: HubEvent): boolean {
    if (!subscription.replayed) return false;
    if (Date.now() > subscription.replayedUntil!) {
      subscription.replayed = undefined;
      return false;
    }
    return subscription.replayed.has(event.id);
  }

  /** Whether the principal, as it is now, may see the event at all; filters only narrow this. */
  #visible(subscription: Subscription, event: HubEvent): boolean {
    if (subscription.orgId !== undefined && event.orgId !== subscription.orgId) return false;
    const principal = this.#options.principal();
    if (event.orgId === null) return isSystemAdmin(principal);
    return can(principal, event.name.startsWith('admission.') ? 'device.manage' : 'device.read', { orgId: event.orgId });
  }

  #notify(subscription: Subscription, event: HubEvent): boolean {
    return this.#options.send(JSON.stringify({ jsonrpc: '2.0', method: 'Event', params: { subscription: subscription.id, event } }));
  }

  /** Tags, groups and external id of the event's device, read as the principal and kept briefly. */
  #factsOf(event: HubEvent): Promise<DeviceFacts | undefined> {
    const { orgId, deviceId } = event;
    if (orgId === null || deviceId === null) return Promise.resolve(undefined);
    const now = Date.now();
    const cached = this.#facts.get(deviceId);
    if (cached && cached.expires > now) return cached.facts;
    if (this.#facts.size >= maxFactsEntries) this.#facts.clear();
    const facts = this.#readFacts(orgId, deviceId);
    this.#facts.set(deviceId, { expires: now + factsTtlMs, facts });
    return facts;
  }

  async #readFacts(orgId: string, deviceId: string): Promise<DeviceFacts | undefined> {
    const { devices, groups } = this.#hub.services;
    try {
      const [device, groupIds] = await Promise.all([devices.get(this.#options.principal(), orgId, deviceId), groups.groupIdsOf(orgId, deviceId)]);
      return { id: device.id, externalId: device.externalId, tags: device.tags, groupIds };
    } catch (error) {
      // A deleted device (or one no longer readable) has no facts; filters asking for them drop its events.
      if (!(error instanceof FleetError)) this.#options.logger.warn({ err: error, deviceId }, 'device facts for an event filter could not be read');
      return undefined;
    }
  }
}

const needsFacts = (filter: EventFilter) => filter.deviceIds !== undefined || filter.tags !== undefined || filter.groups !== undefined;

const eventIdPattern = '^evt_[0-9a-z]{26}$';

/** Subscriptions are a connection's: only a WebSocket client has them. */
function subscriptionsOf(context: ClientContext): { subscriptions: NonNullable<ClientContext['subscriptions']>; afterReply: Array<() => void> } {
  if (!context.subscriptions || !context.afterReply) throw badRequest(webSocketOnlyMessage);
  return { subscriptions: context.subscriptions, afterReply: context.afterReply };
}

export function registerSubscriptionMethods(dispatcher: Dispatcher<ClientContext>, hub: Hub): void {
  dispatcher.register({
    name: 'Subscribe',
    params: Type.Object(
      {
        org: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Organization id or slug; without it, every organization whose events you may see' })),
        filter: Type.Optional(EventFilterSchema),
        lastEventId: Type.Optional(Type.String({ pattern: eventIdPattern, description: 'The id of the last event received: what came after it is sent first' })),
      },
      { additionalProperties: false },
    ),
    access: { actions: ['device.read'] },
    // Without an organization the question is whether the principal may read the devices of any:
    // it is asked of one it belongs to (system admins may anyway).
    resource: async ({ org }, { principal }) => {
      if (org !== undefined) return { orgId: (await orgOf(hub, principal, org)).id };
      const orgIds = watchableOrgIds(principal);
      return orgIds === 'all' || orgIds.length === 0 ? {} : { orgId: orgIds[0] };
    },
    handler: async ({ org, filter, lastEventId }, context) => {
      const { subscriptions, afterReply } = subscriptionsOf(context);
      const orgId = org === undefined ? undefined : (await orgOf(hub, context.principal, org)).id;
      const { result, start } = await subscriptions.subscribe({ orgId, filter: filter as EventFilter | undefined, lastEventId });
      afterReply.push(start);
      return result;
    },
  });

  dispatcher.register({
    name: 'Unsubscribe',
    params: Type.Object({ subscription: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false }),
    // It ends a subscription of the caller's own connection, and nothing else: being connected is enough.
    access: { actions: [] },
    handler: ({ subscription }, context) => subscriptionsOf(context).subscriptions.unsubscribe(subscription),
  });
}
