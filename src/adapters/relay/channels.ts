import { FleetError } from '../../core/errors.ts';
import type { BusSubscription, JsonValue } from '../../hub/bus.ts';
import type { Hub } from '../../hub/hub.ts';
import { closeCodes, type FleetSocket } from '../../hub/socket.ts';
import type { ChannelOwner } from './access.ts';
import { fromBus, presenceFrame, sendFrame, toBus, type Frame } from './frames.ts';
import { presenceEventDevice, readPresence, type Presence } from './presence.ts';

/** How long a page's frame waits for the node holding the device to take it. */
const deviceRequestTimeoutMs = 5_000;

/** A bus subscription this node keeps only while something here needs it. */
class Interest {
  #subscription: Promise<BusSubscription> | undefined;

  constructor(
    private readonly hub: Hub,
    private readonly subject: string,
    private readonly handler: (payload: JsonValue) => unknown,
  ) {}

  /** Resolves once messages published from now on arrive. */
  async hold(): Promise<void> {
    if (!this.#subscription) {
      // Deliveries of a subscription given up while it was being made are not this one's.
      const subscription: Promise<BusSubscription> = this.hub.bus.subscribe(this.subject, ({ payload }) => (this.#subscription === subscription ? this.handler(payload) : undefined));
      this.#subscription = subscription;
      subscription.catch(() => {
        if (this.#subscription === subscription) this.#subscription = undefined;
      });
    }
    await this.#subscription;
  }

  release(): void {
    const subscription = this.#subscription;
    this.#subscription = undefined;
    subscription?.then(
      (s) => s.unsubscribe(),
      () => {},
    );
  }
}

/** One channel as this node sees it: its pages here, its device if connected here. */
export class RelayChannel {
  readonly pages = new Set<FleetSocket>();
  /** Pages being welcomed (subscription, current presence): they keep the channel too. */
  readonly joining = new Set<FleetSocket>();
  /** The device's socket, while it is connected to this node. */
  device: FleetSocket | undefined;
  presence: Presence | undefined;
  /** Counts presence reads, so that an older read finishing last does not win. */
  presenceReads = 0;
  tooLargeLogged = false;
  readonly toPagesSubject: string;
  readonly toDeviceSubject: string;
  readonly pagesInterest: Interest;
  readonly deviceInterest: Interest;

  constructor(
    readonly name: string,
    readonly owner: ChannelOwner,
    hub: Hub,
    onPagesMessage: (channel: RelayChannel, payload: JsonValue) => unknown,
    onDeviceMessage: (channel: RelayChannel, payload: JsonValue) => unknown,
  ) {
    const base = `fleetd.relay.${owner.orgId}.${Buffer.from(name).toString('base64url')}`;
    this.toPagesSubject = `${base}.pages`;
    this.toDeviceSubject = `${base}.device`;
    this.pagesInterest = new Interest(hub, this.toPagesSubject, (payload) => onPagesMessage(this, payload));
    this.deviceInterest = new Interest(hub, this.toDeviceSubject, (payload) => onDeviceMessage(this, payload));
  }

  get idle(): boolean {
    return this.pages.size === 0 && this.joining.size === 0 && this.device === undefined;
  }
}

export type ToDeviceOutcome = 'sent' | 'offline' | 'too_large';

/**
 * This node's channels: which pages watch each, and the device's socket when it is here. Frames
 * reach sockets here directly and other nodes over the bus; a channel is subscribed to only while
 * a page or the device of it is here, and forgotten when the last one leaves.
 */
export class RelayChannels {
  readonly #hub: Hub;
  /** By device id: a channel is one device's. */
  readonly #channels = new Map<string, RelayChannel>();

  constructor(hub: Hub) {
    this.#hub = hub;
    hub.events.listen((event) => {
      const deviceId = presenceEventDevice(event);
      const channel = deviceId === undefined ? undefined : this.#channels.get(deviceId);
      if (channel && channel.pages.size > 0) void this.#refreshPresence(channel).catch((error: unknown) => this.#hub.logger.warn({ err: error, channel: channel.name }, 'relay presence could not be read'));
    });
  }

  /** Channels this node keeps. */
  get size(): number {
    return this.#channels.size;
  }

  /** A page joins: it hears the current presence first, then what the device sends. */
  join(name: string, owner: ChannelOwner, page: FleetSocket): RelayChannel {
    const channel = this.#open(name, owner);
    channel.joining.add(page);
    this.#welcome(channel, page).catch((error: unknown) => {
      this.#hub.logger.error({ err: error, channel: name }, 'a relay page could not join its channel');
      page.close(closeCodes.internal, 'internal error');
    });
    return channel;
  }

  leave(channel: RelayChannel, page: FleetSocket): void {
    channel.joining.delete(page);
    channel.pages.delete(page);
    this.#tidy(channel);
  }

  /** The device's socket is here now; a connection it replaces leaves with `detachDevice`, which then changes nothing. */
  attachDevice(name: string, owner: ChannelOwner, device: FleetSocket): RelayChannel {
    const channel = this.#open(name, owner);
    channel.device = device;
    channel.deviceInterest.hold().catch((error: unknown) => {
      this.#hub.logger.error({ err: error, channel: name }, 'a relay device could not be reached over the bus');
      device.close(closeCodes.internal, 'internal error');
    });
    return channel;
  }

  /** Only the channel's current device socket detaches it: an older one closing later changes nothing (Paikea's eviction race). */
  detachDevice(channel: RelayChannel, device: FleetSocket): void {
    if (channel.device === device) channel.device = undefined;
    this.#tidy(channel);
  }

  /** A device frame to every page of the channel, on every node. */
  toPages(channel: RelayChannel, frame: Frame): void {
    const sentAt = Date.now();
    this.#deliver(channel, frame, sentAt);
    try {
      this.#hub.bus.publish(channel.toPagesSubject, { ...toBus(frame), sentAt, from: this.#hub.nodeId });
    } catch (error) {
      // Pages here have it; those of other nodes miss frames the bus cannot carry.
      if (!channel.tooLargeLogged) this.#hub.logger.warn({ err: error, channel: channel.name }, 'a relay frame could not go to the pages of other nodes');
      channel.tooLargeLogged = true;
    }
  }

  /** A page frame to the device, here or on the node holding it. */
  async toDevice(channel: RelayChannel, frame: Frame): Promise<ToDeviceOutcome> {
    if (channel.device?.open) return sendFrame(channel.device, frame) ? 'sent' : 'offline';
    try {
      const answer = await this.#hub.bus.request(channel.toDeviceSubject, toBus(frame), { timeoutMs: deviceRequestTimeoutMs });
      return answer === true ? 'sent' : 'offline';
    } catch (error) {
      if (error instanceof FleetError && error.code === 'payload_too_large') return 'too_large';
      // Nobody holds the device (no responders), or its node did not answer in time.
      if (error instanceof FleetError && error.code === 'unavailable') return 'offline';
      throw error;
    }
  }

  #open(name: string, owner: ChannelOwner): RelayChannel {
    let channel = this.#channels.get(owner.id);
    if (!channel) {
      channel = new RelayChannel(name, owner, this.#hub, (c, payload) => this.#fromOtherNode(c, payload), (c, payload) => this.#forDevice(c, payload));
      this.#channels.set(owner.id, channel);
    }
    return channel;
  }

  #tidy(channel: RelayChannel): void {
    if (channel.pages.size === 0 && channel.joining.size === 0) channel.pagesInterest.release();
    if (channel.device === undefined) channel.deviceInterest.release();
    if (channel.idle && this.#channels.get(channel.owner.id) === channel) this.#channels.delete(channel.owner.id);
  }

  async #welcome(channel: RelayChannel, page: FleetSocket): Promise<void> {
    await channel.pagesInterest.hold();
    const read = ++channel.presenceReads;
    const presence = await readPresence(this.#hub, channel.owner);
    if (!channel.joining.delete(page)) return;
    // A read started later (an online/offline event) knows better.
    if (read === channel.presenceReads || channel.presence === undefined) this.#setPresence(channel, presence);
    page.send(presenceFrame(channel.presence!, channel.name));
    channel.pages.add(page);
  }

  async #refreshPresence(channel: RelayChannel): Promise<void> {
    const read = ++channel.presenceReads;
    const presence = await readPresence(this.#hub, channel.owner);
    if (read === channel.presenceReads) this.#setPresence(channel, presence);
  }

  /** Pages hear presence only when it changes: a device replaced by a newer connection stays online. */
  #setPresence(channel: RelayChannel, presence: Presence): void {
    if (channel.presence === presence) return;
    channel.presence = presence;
    const frame = presenceFrame(presence, channel.name);
    for (const page of channel.pages) page.send(frame);
  }

  #deliver(channel: RelayChannel, frame: Frame, sentAt: number): void {
    if (channel.pages.size === 0) return;
    this.#hub.metrics.observeRelayLatency(Math.max(0, Date.now() - sentAt) / 1000);
    for (const page of channel.pages) sendFrame(page, frame);
  }

  /** Device frames published by the node holding the device; this node's own were delivered already. */
  #fromOtherNode(channel: RelayChannel, payload: JsonValue): undefined {
    const message = payload as { from?: unknown; sentAt?: unknown };
    if (message?.from === this.#hub.nodeId) return undefined;
    const frame = fromBus(payload);
    if (frame !== undefined) this.#deliver(channel, frame, typeof message.sentAt === 'number' ? message.sentAt : Date.now());
    return undefined;
  }

  /** A page frame from another node: answered only by the node holding the device. */
  #forDevice(channel: RelayChannel, payload: JsonValue): boolean | undefined {
    const device = channel.device;
    const frame = fromBus(payload);
    if (!device?.open || frame === undefined) return undefined;
    return sendFrame(device, frame);
  }
}

const perHub = new WeakMap<Hub, RelayChannels>();

/** The one registry of a node, shared by the relay endpoint and the Paikea-compatible listener. */
export function relayChannels(hub: Hub): RelayChannels {
  let channels = perHub.get(hub);
  if (!channels) {
    channels = new RelayChannels(hub);
    perHub.set(hub, channels);
  }
  return channels;
}
