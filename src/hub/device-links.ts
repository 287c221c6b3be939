import type { Params } from '../adapters/jsonrpc/messages.ts';
import type { StateDocument } from '../core/device-state.ts';
import { badRequest, FleetError } from '../core/errors.ts';
import { monotonicIds } from '../core/ids.ts';
import type { Logger } from '../log.ts';
import type { DeviceState } from '../services/devices.ts';
import { nowIso } from '../store/page.ts';
import type { Store } from '../store/store.ts';
import type { Bus, BusSubscription, JsonValue } from './bus.ts';
import type { EventStream } from './events.ts';
import type { DeviceCallOutcome, HubMetrics } from './metrics.ts';
import { closeCodes } from './socket.ts';

type DesiredState = { desired: StateDocument; version: number; delta: StateDocument | null };

/** A device's connection, as the adapter holding its socket gives it to DeviceLinks. */
export interface DeviceLink {
  /** Calls a method on the device over its socket (OutgoingCalls of src/adapters/jsonrpc/calls.ts). */
  call(method: string, params: Params | undefined, timeoutMs: number): Promise<unknown>;
  /** Closes the socket (used when a newer connection of the same device takes over: 4000 'replaced'). */
  close(code: number, reason: string): void;
  /** Optional: the desired state changed while the device is connected. */
  desired?(state: DesiredState): void;
  /** Optional: sends a notification (no answer expected), for protocols that have them (Fleetd.UpdateAvailable). */
  notify?(method: string, params: Params): void;
}

/** One device linked on this node. */
interface Attachment {
  deviceId: string;
  orgId: string;
  link: DeviceLink;
  /** Orders the connections of a device across nodes: the greater token is the newer connection. */
  token: string;
  subscriptions: BusSubscription[];
  /** Replaced, detached or closed: it no longer speaks for the device. */
  released: boolean;
  /** The store names this node since this attachment wrote it. */
  written: boolean;
  /** An older connection claimed the device before this one had written its node. */
  olderClaimed: boolean;
  /** The version of the last desired state handed to the link. */
  desiredVersion: number;
}

interface Claim {
  node: string;
  token: string;
}

interface CallRequest {
  method: string;
  params?: Params;
  timeoutMs: number;
}

/** What a bus request adds to the device's own timeout: the trips to the node holding it and back. */
const busMarginMs = 2_000;
/** What fleetd's ids look like: bus subjects are built from them, so nothing else may get in. */
const deviceIdPattern = /^[a-z]+_[0-9a-z]{1,64}$/;
const replacedReason = 'replaced by a newer connection';

const offline = (deviceId: string) => new FleetError('unavailable', `Device ${deviceId} is offline`, { details: { reason: 'device_offline' } });

function subject(deviceId: string, kind: 'call' | 'claim' | 'desired'): string {
  if (typeof deviceId !== 'string' || !deviceIdPattern.test(deviceId)) throw badRequest('Not a device id');
  return `fleetd.device.${deviceId}.${kind}`;
}

function outcomeOf(error: unknown): DeviceCallOutcome {
  if (!(error instanceof FleetError)) return 'error';
  if (error.code === 'device_timeout') return 'timeout';
  return error.code === 'unavailable' && (error.details as { reason?: unknown } | undefined)?.reason === 'device_offline' ? 'offline' : 'error';
}

/**
 * Which node holds each device's socket, and the way to it. The node holding a socket answers the
 * bus calls for its device; the newest connection of a device wins on whichever node it arrives
 * (its claim makes older ones close); `devices.connected_node` in the store says where a device is.
 * Who may call a device is the caller's to decide: this only carries calls.
 */
export class DeviceLinks {
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #events: EventStream;
  readonly #nodeId: string;
  readonly #logger: Logger;
  readonly #metrics: HubMetrics;
  readonly #callTimeoutMs: number;
  readonly #nextToken = monotonicIds('link');
  readonly #local = new Map<string, Attachment>();

  constructor(options: { store: Store; bus: Bus; events: EventStream; nodeId: string; logger: Logger; metrics: HubMetrics; callTimeoutMs: number }) {
    this.#store = options.store;
    this.#bus = options.bus;
    this.#events = options.events;
    this.#nodeId = options.nodeId;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#callTimeoutMs = options.callTimeoutMs;
  }

  get localCount(): number {
    return this.#local.size;
  }

  isLocal(deviceId: string): boolean {
    return this.#local.has(deviceId);
  }

  /**
   * The device's socket on this node. The order matters across nodes: the claim subscription is in
   * place before anything is written, so a newer connection elsewhere is heard; the claim goes out
   * after the store says this node, so that an older connection whose write landed late is always
   * followed by a claim this newer one answers by writing its node again.
   */
  async attach(device: { id: string; orgId: string }, link: DeviceLink): Promise<() => Promise<void>> {
    const claimSubject = subject(device.id, 'claim');
    const attachment: Attachment = {
      deviceId: device.id,
      orgId: device.orgId,
      link,
      token: this.#nextToken(),
      subscriptions: [],
      released: false,
      written: false,
      olderClaimed: false,
      desiredVersion: -1,
    };
    const older = this.#local.get(device.id);
    this.#local.set(device.id, attachment);
    if (older) this.#replace(older);
    try {
      attachment.subscriptions.push(await this.#bus.subscribe(claimSubject, ({ payload }) => this.#claimed(attachment, payload as unknown as Claim)));
      attachment.subscriptions.push(await this.#bus.subscribe(subject(device.id, 'call'), ({ payload }) => this.#answer(attachment, payload as unknown as CallRequest)));
      attachment.subscriptions.push(await this.#bus.subscribe(subject(device.id, 'desired'), ({ payload }) => this.#desired(attachment, payload)));
      if (attachment.released) {
        // A newer connection claimed the device meanwhile: let go of what was subscribed since.
        this.#release(attachment);
        return async () => {};
      }
      await this.#markConnected(device.id);
      attachment.written = true;
      if (attachment.olderClaimed) await this.#reassert(attachment);
      this.#bus.publish(claimSubject, { node: this.#nodeId, token: attachment.token } satisfies Claim);
      if (!attachment.released) await this.#publishOnline(attachment);
    } catch (error) {
      // The store may name this node already: a device whose attach failed is not left online.
      await this.#detach(attachment, 'disconnected').catch((cleanup: unknown) => this.#logger.warn({ err: cleanup, deviceId: device.id }, 'could not take a device offline after its attach failed'));
      throw error;
    }
    return () => this.#detach(attachment, 'disconnected');
  }

  /**
   * Relays a call: to the socket when it is on this node, else over the bus to the node holding it.
   * FleetErrors: unavailable {reason: 'device_offline'}, device_error (details carry the device's
   * error object {code, message, data?}), device_timeout.
   */
  async call(deviceId: string, method: string, params?: Params, options: { timeoutMs?: number } = {}): Promise<unknown> {
    try {
      const timeoutMs = this.#timeout(options.timeoutMs);
      const local = this.#local.get(deviceId);
      const result = local ? await local.link.call(method, params, timeoutMs) : await this.#callRemote(deviceId, { method, params, timeoutMs });
      this.#metrics.deviceCall('ok');
      return result;
    } catch (error) {
      this.#metrics.deviceCall(outcomeOf(error));
      throw error;
    }
  }

  /**
   * Sends a notification to the device if its socket is on this node and its link takes
   * notifications; false otherwise. Every node is asked the same (a bus broadcast), so only the one
   * holding the device sends.
   */
  notifyLocal(deviceId: string, method: string, params: Params): boolean {
    const attachment = this.#local.get(deviceId);
    if (!attachment || attachment.released || !attachment.link.notify) return false;
    attachment.link.notify(method, params);
    return true;
  }

  /** Tells the node holding the device (this one or another) that its desired state changed. */
  desiredChanged(deviceId: string, state: DeviceState): void {
    try {
      this.#bus.publish(subject(deviceId, 'desired'), { desired: state.desired, version: state.desiredVersion, delta: state.delta } satisfies DesiredState);
    } catch (error) {
      // The device gets the delta on its next connection, or the next change.
      this.#logger.warn({ err: error, deviceId }, 'could not tell the device its desired state changed');
    }
  }

  /**
   * Another node took this one for dead (it missed its heartbeats, see NodeLiveness) and took its
   * devices offline in the store; their sockets are still here. Writes this node back for each device
   * linked here that the store shows offline, and says it is online again.
   */
  async reclaim(): Promise<void> {
    const results = await Promise.allSettled(
      [...this.#local.values()].map(async (attachment) => {
        const written = await this.#store.db
          .updateTable('devices')
          .set({ connected_node: this.#nodeId, last_seen_at: nowIso() })
          .where('id', '=', attachment.deviceId)
          .where('connected_node', 'is', null)
          .executeTakeFirst();
        // An attachment not written yet says online itself once it is.
        if (written.numUpdatedRows > 0n && attachment.written && !attachment.released) await this.#publishOnline(attachment);
      }),
    );
    for (const result of results) if (result.status === 'rejected') this.#logger.warn({ err: result.reason }, 'could not write back a device of this node');
  }

  /** Detaches every device of this node (offline) and stops answering for them. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#local.values()].map((attachment) => this.#detach(attachment, 'shutdown')));
  }

  #timeout(requested: number | undefined): number {
    if (requested === undefined) return this.#callTimeoutMs;
    if (!Number.isInteger(requested) || requested < 1) throw badRequest('A device call timeout is a whole number of milliseconds, at least 1');
    return Math.min(requested, this.#callTimeoutMs);
  }

  async #callRemote(deviceId: string, request: CallRequest): Promise<JsonValue> {
    try {
      return await this.#bus.request(subject(deviceId, 'call'), request, { timeoutMs: request.timeoutMs + busMarginMs });
    } catch (error) {
      const reason = error instanceof FleetError && error.code === 'unavailable' ? (error.details as { reason?: unknown } | undefined)?.reason : undefined;
      if (reason === 'no_responders') throw offline(deviceId);
      // The node holding the device would have answered device_timeout by now: it is gone or stuck.
      if (reason === 'timeout') throw new FleetError('device_timeout', `The device did not answer ${request.method} within ${request.timeoutMs} ms`, { details: { method: request.method, timeoutMs: request.timeoutMs } });
      throw error;
    }
  }

  /** A bus call for a device linked here; an attachment that no longer speaks for it stays silent. */
  async #answer(attachment: Attachment, request: CallRequest): Promise<unknown> {
    if (attachment.released) return undefined;
    const { method, params, timeoutMs } = request ?? {};
    if (typeof method !== 'string' || (params !== undefined && (typeof params !== 'object' || params === null)) || typeof timeoutMs !== 'number') {
      throw badRequest('A device call on the bus needs method, params and timeoutMs');
    }
    const result = await attachment.link.call(method, params, this.#timeout(timeoutMs));
    // `undefined` would not answer the request at all.
    return result ?? null;
  }

  /** Changes made on several nodes may arrive out of order: an older version than the link has is dropped. */
  #desired(attachment: Attachment, payload: JsonValue): undefined {
    const state = payload as unknown as DesiredState;
    if (attachment.released || typeof state?.version !== 'number' || state.version <= attachment.desiredVersion) return undefined;
    attachment.desiredVersion = state.version;
    attachment.link.desired?.(state);
    return undefined;
  }

  /**
   * Another connection of the device claimed it. The newer one stays: this one closes if it is
   * older; if it is the newer, it writes its node again (once its own write is done), in case the
   * older one's write came last.
   */
  async #claimed(attachment: Attachment, claim: Claim): Promise<undefined> {
    if (attachment.released || typeof claim?.token !== 'string' || claim.token === attachment.token) return undefined;
    if (claim.token > attachment.token) this.#replace(attachment);
    else if (!attachment.written) attachment.olderClaimed = true;
    else if ((await this.#reassert(attachment)) && !attachment.released) await this.#publishOnline(attachment);
    return undefined;
  }

  #replace(attachment: Attachment): void {
    this.#release(attachment);
    attachment.link.close(closeCodes.replaced, replacedReason);
  }

  /** Stops the attachment speaking for its device here. */
  #release(attachment: Attachment): void {
    attachment.released = true;
    for (const subscription of attachment.subscriptions) subscription.unsubscribe();
    if (this.#local.get(attachment.deviceId) === attachment) this.#local.delete(attachment.deviceId);
  }

  async #markConnected(deviceId: string): Promise<void> {
    await this.#store.db.updateTable('devices').set({ connected_node: this.#nodeId, last_seen_at: nowIso() }).where('id', '=', deviceId).execute();
  }

  /** Writes this node as the device's again where the store names another node or none; true if it did. */
  async #reassert(attachment: Attachment): Promise<boolean> {
    const written = await this.#store.db
      .updateTable('devices')
      .set({ connected_node: this.#nodeId })
      .where('id', '=', attachment.deviceId)
      .where((eb) => eb.or([eb('connected_node', 'is', null), eb('connected_node', '!=', this.#nodeId)]))
      .executeTakeFirst();
    return written.numUpdatedRows > 0n;
  }

  async #publishOnline(attachment: Attachment): Promise<void> {
    await this.#events.publish({ orgId: attachment.orgId, deviceId: attachment.deviceId, name: 'device.online', data: { node: this.#nodeId } });
  }

  /**
   * Only the device's current connection detaches it: the store is cleared only where it still
   * names this node, so a newer connection on another node is not marked offline, and device.offline
   * is published only when this node did mark it offline.
   */
  async #detach(attachment: Attachment, reason: 'disconnected' | 'shutdown'): Promise<void> {
    if (attachment.released) return;
    this.#release(attachment);
    const cleared = await this.#store.db
      .updateTable('devices')
      .set({ connected_node: null, last_seen_at: nowIso() })
      .where('id', '=', attachment.deviceId)
      .where('connected_node', '=', this.#nodeId)
      .executeTakeFirst();
    if (cleared.numUpdatedRows > 0n) {
      await this.#events.publish({ orgId: attachment.orgId, deviceId: attachment.deviceId, name: 'device.offline', data: { node: this.#nodeId, reason } });
    }
  }
}
