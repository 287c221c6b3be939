import { badRequest } from '../core/errors.ts';
import { monotonicIds, newId } from '../core/ids.ts';
import type { Logger } from '../log.ts';
import type { Database } from '../store/schema.ts';
import type { Store } from '../store/store.ts';
import type { Bus, BusSubscription, JsonValue } from './bus.ts';
import { encodePayload } from './payload.ts';

export const hubEventNames = [
  'device.online',
  'device.offline',
  'device.status',
  'device.notification',
  'device.info',
  'device.update',
  'admission.pending',
  'admission.accepted',
  'admission.denied',
] as const;
export type HubEventName = (typeof hubEventNames)[number];

/**
 * Something that happened in the hub, for clients watching devices. `data` by name:
 * device.online {node}, device.offline {node, reason}, device.status {changed} (only the changed
 * fields), device.notification {method, params} (a Shelly NotifyEvent gives one event per entry of
 * params.events, with data {event, component?, ...entry}), device.info {info}, device.update
 * {status, progress, reason, version, packageId, deploymentId} (a device's report on its update),
 * admission.pending {pendingId, externalId, endpoint, info}, admission.accepted {pendingId, externalId,
 * deviceId}, admission.denied {pendingId, externalId}.
 */
export interface HubEvent {
  /** Strictly increasing per node; a client replays from the last one it saw. */
  id: string;
  /** Null: only system admins see it (a pending device without organization). */
  orgId: string | null;
  deviceId: string | null;
  name: HubEventName;
  /** ISO time. */
  at: string;
  data: { [key: string]: JsonValue };
}

export type NewHubEvent = Omit<HubEvent, 'id' | 'at'>;

/** Every hub event of every node goes by this subject. */
const eventsSubject = 'fleetd.events';
const eventId = /^evt_[0-9a-hjkmnp-tv-z]{26}$/;
const pruneIntervalMs = 60_000;

type EventRow = Database['hub_events'];

const toRow = (event: HubEvent): EventRow => ({
  id: event.id,
  org_id: event.orgId,
  device_id: event.deviceId,
  name: event.name,
  data: JSON.stringify(event.data),
  at: event.at,
});

const toEvent = (row: EventRow): HubEvent => ({
  id: row.id,
  orgId: row.org_id,
  deviceId: row.device_id,
  name: row.name as HubEventName,
  at: row.at,
  data: JSON.parse(row.data) as HubEvent['data'],
});

/**
 * The hub's event stream: every event is kept for a while (so a client that reconnects can catch up
 * on what it missed) and sent to every node over the bus. Listeners of a node hear an event only
 * from the bus, including the node's own events, so each arrives once wherever it was published.
 */
export class EventStream {
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #logger: Logger;
  readonly #retentionMs: number;
  readonly #replayMax: number;
  readonly #nextId = monotonicIds('evt');
  readonly #listeners = new Set<(event: HubEvent) => void>();
  readonly #publishedListeners = new Set<(event: HubEvent) => void>();
  #subscription: BusSubscription | undefined;
  #pruning: NodeJS.Timeout | undefined;
  /**
   * The last event on its way to the bus: each publish waits for the one before, so events go out
   * in the order of their ids (of one device, of one node) even when their writes finish out of order.
   */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(options: { store: Store; bus: Bus; logger: Logger; retentionSeconds: number; replayMax: number }) {
    this.#store = options.store;
    this.#bus = options.bus;
    this.#logger = options.logger;
    this.#retentionMs = options.retentionSeconds * 1000;
    this.#replayMax = options.replayMax;
  }

  async start(): Promise<void> {
    this.#subscription = await this.#bus.subscribe(eventsSubject, ({ payload }) => this.#deliver(payload as unknown as HubEvent));
    this.#pruning = setInterval(() => void this.prune().catch((error: unknown) => this.#logger.warn({ err: error }, 'hub event prune failed')), pruneIntervalMs);
    this.#pruning.unref();
  }

  /** Stores the event (so it can be replayed), then publishes it on the bus. */
  async publish(event: NewHubEvent): Promise<HubEvent> {
    const stored: HubEvent = { id: this.#nextId(), at: new Date().toISOString(), orgId: event.orgId, deviceId: event.deviceId, name: event.name, data: event.data };
    // Refused before it is stored: what cannot travel on the bus must not be replayed either.
    encodePayload(stored, this.#bus.maxPayload);
    const written = this.#store.db.insertInto('hub_events').values(toRow(stored)).execute();
    const sent = Promise.all([written, this.#tail.catch(() => {})]).then(() => this.#send(stored));
    this.#tail = sent;
    return await sent;
  }

  /**
   * Every event this node publishes, on this node only, once it is stored: for work to be done once
   * in a cluster (the node that published does it). Returns the unsubscribe.
   */
  onPublished(listener: (event: HubEvent) => void): () => void {
    this.#publishedListeners.add(listener);
    return () => void this.#publishedListeners.delete(listener);
  }

  /** Every event reaching this node from any node, once, in arrival order. Returns the unsubscribe. */
  listen(listener: (event: HubEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /**
   * Events after `afterId` visible in `orgIds` ('all' for system admins, which includes events of no
   * organization), oldest first, at most replayMax. `complete` is false when events after `afterId`
   * may be missing: it is older than what is kept, or more than replayMax came after it.
   */
  async replay(orgIds: string[] | 'all', afterId: string): Promise<{ events: HubEvent[]; complete: boolean }> {
    if (typeof afterId !== 'string' || !eventId.test(afterId)) throw badRequest('The event id to replay after is not one this server gave out');
    if (orgIds !== 'all' && orgIds.length === 0) return { events: [], complete: await this.#keptSince(afterId) };
    let query = this.#store.db.selectFrom('hub_events').selectAll().where('id', '>', afterId);
    if (orgIds !== 'all') query = query.where('org_id', 'in', orgIds);
    const rows = await query.orderBy('id').limit(this.#replayMax + 1).execute();
    const events = rows.slice(0, this.#replayMax).map(toEvent);
    return { events, complete: rows.length <= this.#replayMax && (await this.#keptSince(afterId)) };
  }

  /** Deletes the events older than the retention; returns how many. */
  async prune(): Promise<number> {
    const cutoff = new Date(Date.now() - this.#retentionMs).toISOString();
    const deleted = await this.#store.db.deleteFrom('hub_events').where('at', '<', cutoff).executeTakeFirst();
    return Number(deleted.numDeletedRows);
  }

  /** Stops listening to the bus and pruning, after the events on their way have gone out. */
  async close(): Promise<void> {
    clearInterval(this.#pruning);
    await this.#tail.catch(() => {});
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    this.#listeners.clear();
    this.#publishedListeners.clear();
  }

  /**
   * Whether every event after `afterId` is still kept: it is not older than the oldest kept event,
   * or it is younger than the retention, so that nothing after it can have been pruned yet.
   */
  async #keptSince(afterId: string): Promise<boolean> {
    if (afterId >= newId('evt', Date.now() - this.#retentionMs)) return true;
    const oldest = await this.#store.db.selectFrom('hub_events').select('id').orderBy('id').limit(1).executeTakeFirst();
    return oldest !== undefined && afterId >= oldest.id;
  }

  #send(event: HubEvent): HubEvent {
    try {
      this.#bus.publish(eventsSubject, event);
    } catch (error) {
      // Stored all the same: listeners of every node miss it, clients catch up by replaying.
      this.#logger.warn({ err: error, event: event.id, name: event.name }, 'hub event not sent on the bus');
    }
    this.#notify(this.#publishedListeners, event);
    return event;
  }

  #deliver(event: HubEvent): undefined {
    this.#notify(this.#listeners, event);
    return undefined;
  }

  #notify(listeners: Set<(event: HubEvent) => void>, event: HubEvent): void {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#logger.error({ err: error, event: event.id, name: event.name }, 'hub event listener failed');
      }
    }
  }
}
