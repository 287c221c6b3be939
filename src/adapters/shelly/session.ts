import type { Principal } from '../../core/access.ts';
import { mergeState, type StateDocument } from '../../core/device-state.ts';
import { FleetError } from '../../core/errors.ts';
import type { AdmissionEndpoint } from '../../config/keys.ts';
import type { UpgradeRequest } from '../../http/websocket.ts';
import type { DeviceLink } from '../../hub/device-links.ts';
import type { Hub } from '../../hub/hub.ts';
import { closeCodes, type FleetSocket } from '../../hub/socket.ts';
import type { Logger } from '../../log.ts';
import type { Device } from '../../services/devices.ts';
import { OutgoingCalls } from '../jsonrpc/calls.ts';
import type { Params } from '../jsonrpc/messages.ts';
import type { NotificationMessage } from '../jsonrpc/parse.ts';
import type { FinalDecision } from '../../services/admission.ts';
import { admit, type Admitting } from './admit.ts';
import { closeCodeOf, shellyCloseReasons } from './close-codes.ts';
import { publish, type ConnectedDevice } from './context.ts';
import { isDocument, methodNotFoundFrame, readFrame, requestFrame, statusOf } from './frames.ts';
import { helloSummary, readHello } from './handle-hello.ts';
import { handleNotification } from './handle-notification.ts';
import { handleNotifyEvent } from './handle-notify-event.ts';
import { handleNotifyStatus, replaceStatus, reportStatus } from './handle-notify-status.ts';
import { hydrate } from './hydrate.ts';
import { storeShellyInfo } from './store-shelly-info.ts';

/** What the upgrade found: who the device says it is before it says anything. */
export interface DeviceUpgrade {
  /** A device key: the device is admitted as the device the key belongs to. */
  principal?: Extract<Principal, { kind: 'device' }>;
  /** An `fe_…` enrollment token from `?token=`, for admission to check. */
  enrollmentToken?: string;
  /** `?org=<slug>`: where a pending device shows. */
  orgHint?: string;
}

/** How the two device endpoints differ: everything else is one protocol. */
export interface Flavor {
  endpoint: Extract<AdmissionEndpoint, 'shelly' | 'devices'>;
  /** Sends the denial and closes. */
  deny(send: (text: string) => void, close: (code: number, reason: string) => void): void;
  /** fleetd's own devices are told their desired state; Shelly devices have no such method. */
  desired: boolean;
  /** fleetd's own devices hear fleetd's notifications (Fleetd.UpdateAvailable); Shelly devices know none. */
  notifications: boolean;
}

export interface SessionOptions {
  /** How long a new connection may stay silent before its hello. */
  helloTimeoutMs?: number;
}

const defaultHelloTimeoutMs = 30_000;
/** Calls waiting at once on one device, as Fleet Manager allows. */
const maxPendingCalls = 10;
/**
 * Status held in memory before the device's state may be written (waiting for admission, during
 * hydration). Beyond this size only the newest notification is kept: what the device reports later
 * replaces it anyway.
 */
const maxHeldStatusChars = 64 * 1024;

type Phase = 'hello' | 'admitting' | 'pending' | 'attaching' | 'hydrating' | 'steady' | 'closed';

/**
 * One device connection's life: hello → admission (maybe waiting, socket open) → attach →
 * hydration → steady state, until the socket closes. Calls to the device are never awaited while a
 * frame is handled (its answer is a later frame): hydration and refetches run beside the frames,
 * one after another, and status writes go through one lane so they land in the order they came.
 */
export class DeviceSession {
  private phase: Phase = 'hello';
  private logger: Logger;
  private externalId?: string;
  /** The hello's status, and what came while waiting for admission. */
  private seed: StateDocument = {};
  /** Status notifications since hydration's GetStatus answered: newer than what it returned. */
  private late: StateDocument = {};
  private admitting?: Admitting;
  private calls?: OutgoingCalls;
  private attaching?: Promise<() => Promise<void>>;
  private connected?: ConnectedDevice;
  private statusTail: Promise<void> = Promise.resolve();
  private followUpTail: Promise<void> = Promise.resolve();
  private ignored = 0;
  private readonly helloTimer: NodeJS.Timeout;

  constructor(
    private readonly hub: Hub,
    private readonly socket: FleetSocket,
    private readonly request: UpgradeRequest,
    private readonly auth: DeviceUpgrade,
    private readonly flavor: Flavor,
    options: SessionOptions = {},
  ) {
    this.logger = hub.logger.child({ component: 'shelly', endpoint: flavor.endpoint, socket: socket.id });
    this.helloTimer = setTimeout(() => {
      if (this.phase === 'hello') this.socket.close(closeCodes.policy, shellyCloseReasons.helloTimeout);
    }, options.helloTimeoutMs ?? defaultHelloTimeoutMs);
    socket.onText((text) => this.onText(text));
    socket.onClose((code, reason) => this.onClose(code, reason));
  }

  private async onText(text: string): Promise<void> {
    if (this.phase === 'hello') return this.onHello(text);
    this.log('out', text);
    const frame = readFrame(text);
    if (frame.kind === 'unreadable') return this.ignore(frame.reason);
    const { message, src } = frame;
    // Only the device named by the hello speaks on this socket; a frame in another's name is dropped.
    if (src !== undefined && src !== this.externalId) return this.ignore('src is not the device of this connection');
    switch (message.kind) {
      case 'response':
      case 'malformed_response':
        if (!this.calls?.settle(message)) this.ignore('a response no call is waiting for');
        return;
      case 'request':
        this.send(methodNotFoundFrame(message.id, src));
        return;
      case 'notification':
        return this.onNotification(message);
    }
  }

  private onHello(text: string): void {
    const hello = readHello(text);
    // Logged under the device's name when it gave one, else under the socket's.
    if (hello.ok) this.externalId = hello.externalId;
    this.log('out', text);
    if (!hello.ok) {
      this.logger.info({ reason: hello.detail }, 'device hello refused');
      this.socket.close(hello.code, hello.reason);
      return;
    }
    clearTimeout(this.helloTimer);
    this.logger = this.logger.child({ externalId: hello.externalId });
    this.seed = statusOf(hello.params);
    this.phase = 'admitting';
    this.admitting = admit(
      this.hub.services.admission,
      {
        endpoint: this.flavor.endpoint,
        externalId: hello.externalId,
        ...(this.auth.principal && { principal: this.auth.principal }),
        ...(this.auth.enrollmentToken && { enrollmentToken: this.auth.enrollmentToken }),
        ...(this.auth.orgHint && { orgHint: this.auth.orgHint }),
        info: { hello: helloSummary(hello.params) },
        remoteAddress: this.request.remoteAddress,
      },
      (pendingId) => {
        if (this.phase === 'admitting') this.phase = 'pending';
        this.logger.info({ pendingId }, 'device waits for admission');
      },
    );
    // Admission reads and writes the store: the hello frame is done, the next frames keep coming.
    this.admitting.decided.then((decision) => this.onDecision(decision)).catch((error: unknown) => this.refuse(error, 'could not admit the device'));
  }

  private async onDecision(decision: FinalDecision): Promise<void> {
    if (this.phase === 'closed') return;
    if (decision.status === 'denied') {
      this.logger.info({ reason: decision.reason }, 'device denied');
      this.flavor.deny(
        (text) => this.send(text),
        (code, reason) => this.socket.close(code, reason),
      );
      return;
    }
    const { device } = decision;
    if (this.auth.principal && this.auth.principal.deviceId !== device.id) {
      this.logger.warn({ keyDevice: this.auth.principal.deviceId, deviceId: device.id }, 'device key of another device');
      this.socket.close(closeCodes.forbidden, shellyCloseReasons.wrongDevice);
      return;
    }
    await this.attach(device, decision.via);
  }

  private async attach(device: Device, via: string): Promise<void> {
    this.phase = 'attaching';
    this.logger = this.logger.child({ deviceId: device.id });
    const calls = new OutgoingCalls({
      send: (request) => {
        if (!this.send(requestFrame(request))) throw new FleetError('unavailable', 'The device connection is closing');
      },
      timeoutMs: this.hub.config.deviceCallTimeout * 1000,
      maxPending: maxPendingCalls,
    });
    this.calls = calls;
    const connected: ConnectedDevice = {
      hub: this.hub,
      device: { id: device.id, orgId: device.orgId, externalId: this.externalId! },
      principal: this.hub.services.devices.principalFor(device),
      logger: this.logger,
      call: (method, params, timeoutMs) => calls.call(method, params, { timeoutMs }),
      report: (patch) => this.inStatusLane(() => reportStatus(connected, patch)),
      refreshTimeoutMs: this.hub.config.hydrationTimeout * 1000,
    };
    const link: DeviceLink = {
      call: connected.call,
      close: (code, reason) => this.socket.close(code, reason),
      ...(this.flavor.desired && { desired: (state) => this.sendDesired(state) }),
      ...(this.flavor.notifications && { notify: (method, params) => this.sendNotification(method, params) }),
    };
    this.attaching = this.hub.links.attach({ id: device.id, orgId: device.orgId }, link);
    try {
      await this.attaching;
    } catch (error) {
      return this.refuse(error, 'could not attach the device');
    }
    // A socket that closed meanwhile is detached by onClose.
    if (this.phase !== 'attaching') return;
    this.connected = connected;
    this.phase = 'hydrating';
    this.logger.info({ via }, 'device connected');
    if (this.flavor.desired) await this.sendInitialDesired(connected);
    this.schedule(() => this.hydrate(connected));
  }

  private async hydrate(connected: ConnectedDevice): Promise<void> {
    this.late = {};
    const hydration = await hydrate(connected.call, this.seed, {
      timeoutMs: connected.refreshTimeoutMs,
      logger: this.logger,
      onStatus: () => {
        this.late = {};
      },
    });
    if (this.phase === 'closed') return;
    const status = mergeState(hydration.status, this.late);
    this.late = {};
    this.seed = {};
    // From here on status notifications are written as they come, after the whole status.
    this.phase = 'steady';
    const reported = this.inStatusLane(() => replaceStatus(connected, status));
    await this.storeInfo(connected, hydration.info, hydration.config);
    await reported;
    // Last: watchers told of the info find everything hydration read stored.
    if (hydration.info) await publish(connected, 'device.info', { info: hydration.info });
  }

  /** A configuration too large for the metadata is left out rather than the model and firmware with it. */
  private async storeInfo(connected: ConnectedDevice, info: StateDocument | undefined, config: StateDocument | undefined): Promise<void> {
    const store = this.hub.services.store;
    try {
      if (info || config) await storeShellyInfo(store, connected.device.id, { ...(info && { info }), ...(config && { config }) });
    } catch (error) {
      this.logger.warn({ err: error }, 'could not store the device info and configuration');
      if (!(error instanceof FleetError && error.code === 'payload_too_large') || !info || !config) return;
      await storeShellyInfo(store, connected.device.id, { info }).catch((again: unknown) => this.logger.warn({ err: again }, 'could not store the device info'));
    }
  }

  private async onNotification(message: NotificationMessage): Promise<void> {
    const { method, params } = message;
    if (method === 'NotifyStatus' || method === 'NotifyFullStatus') {
      if (!isDocument(params)) return this.ignore(`${method} params is not an object`);
      if (this.phase === 'steady') return handleNotifyStatus(this.connected!, params);
      if (this.phase === 'hydrating') this.late = keepNewest(this.late, statusOf(params));
      else this.seed = keepNewest(this.seed, statusOf(params));
      return;
    }
    const connected = this.connected;
    // A device waiting for admission routes nothing.
    if (!connected) return this.ignore(`${method} before the device is admitted`);
    try {
      if (method === 'NotifyEvent') {
        if (!isDocument(params)) return this.ignore('NotifyEvent params is not an object');
        await handleNotifyEvent(connected, params, (task) => this.schedule(task));
      } else await handleNotification(connected, method, params);
    } catch (error) {
      this.logger.warn({ err: error, method }, 'could not handle a device notification');
    }
  }

  private async sendInitialDesired(connected: ConnectedDevice): Promise<void> {
    try {
      const state = await this.hub.services.devices.state(connected.principal, connected.device.orgId, connected.device.id);
      if (Object.keys(state.desired).length > 0) this.sendDesired({ desired: state.desired, version: state.desiredVersion, delta: state.delta });
    } catch (error) {
      this.logger.warn({ err: error }, 'could not read the desired state');
    }
  }

  private sendDesired(state: { desired: StateDocument; version: number; delta: StateDocument | null }): void {
    this.sendNotification('Device.Desired', { desired: state.desired, version: state.version, delta: state.delta });
  }

  /** A JSON-RPC notification, framed as Device.Desired is: fleetd's own devices read `jsonrpc` and no `src`. */
  private sendNotification(method: string, params: Params): void {
    this.send(JSON.stringify({ jsonrpc: '2.0', method, params }));
  }

  /** Status writes one after another, in the order the frames came; a failure is logged and the next one runs. */
  private inStatusLane(task: () => Promise<void>): Promise<void> {
    const run = this.statusTail.then(task).catch((error: unknown) => this.logger.warn({ err: error }, 'could not store the device status'));
    this.statusTail = run;
    return run;
  }

  /** Work that calls the device, after the frame that asked for it, one task at a time. */
  private schedule(task: () => Promise<void>): void {
    this.followUpTail = this.followUpTail
      .then(() => (this.phase === 'closed' ? undefined : task()))
      .catch((error: unknown) => this.logger.warn({ err: error }, 'device follow-up failed'));
  }

  private onClose(code: number, reason: string): void {
    const phase = this.phase;
    this.phase = 'closed';
    clearTimeout(this.helloTimer);
    this.admitting?.cancel();
    this.calls?.close();
    this.logger.info({ code, reason, phase, ...(this.ignored > 0 && { ignoredFrames: this.ignored }) }, 'device disconnected');
    void this.attaching?.then(
      (detach) => detach().catch((error: unknown) => this.logger.error({ err: error }, 'could not detach the device')),
      () => undefined,
    );
  }

  private refuse(error: unknown, message: string): void {
    const { code, reason } = closeCodeOf(error);
    if (code === closeCodes.internal) this.logger.error({ err: error }, message);
    else this.logger.info({ err: error }, message);
    this.socket.close(code, reason);
  }

  private ignore(reason: string): void {
    this.ignored++;
    this.logger.debug({ reason, ignored: this.ignored }, 'device frame ignored');
  }

  private send(text: string): boolean {
    this.log('in', text);
    return this.socket.send(text);
  }

  /** As the message log sees it from the device: 'out' comes from it, 'in' goes to it. */
  private log(direction: 'in' | 'out', text: string): void {
    if (this.hub.config.messageLogDevices) this.hub.messageLog.write({ endpoint: this.flavor.endpoint, direction, channel: this.externalId ?? this.socket.id, text });
  }
}

function keepNewest(held: StateDocument, status: StateDocument): StateDocument {
  const merged = mergeState(held, status);
  return JSON.stringify(merged).length <= maxHeldStatusChars ? merged : status;
}
