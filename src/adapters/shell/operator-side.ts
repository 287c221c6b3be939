import { FleetError } from '../../core/errors.ts';
import type { BusSubscription, JsonValue } from '../../hub/bus.ts';
import { recheckCredentials } from '../../hub/credential-recheck.ts';
import type { Hub } from '../../hub/hub.ts';
import { closeCodes, type FleetSocket } from '../../hub/socket.ts';
import type { Logger } from '../../log.ts';
import type { Actor } from '../../services/actor.ts';
import type { Credentials } from '../../services/authenticator.ts';
import type { DeviceRef } from '../../services/remote/target-device.ts';
import { shellCloseCodes } from './close-codes.ts';
import { readOperatorControl } from './control-frames.ts';
import { deviceSubject, operatorSubject, publishBytes, readShellMessage, type ShellMessage } from './session-bus.ts';

/** Who opens a shell on which device, decided before the upgrade. */
export interface OperatorAccess {
  actor: Actor;
  device: DeviceRef;
  credentials: Credentials;
  /** The WebSocket URL of the device's side, without the session id: `ws(s)://<host>/api/devices/shell/`. */
  attachUrl: string;
}

/** How this side ends the operator's socket, when it is this side that ends it. */
type Close = { code: number; reason: string };

/** Serves an operator's shell socket: the session is recorded, the device told to dial back, then bytes flow. */
export function serveOperatorShell(hub: Hub, socket: FleetSocket, access: OperatorAccess): void {
  new OperatorShell(hub, socket, access).start();
}

/**
 * The operator's half of a shell, on the node the operator's socket is on. It keeps the session's
 * record (state, byte counts, close) and the timers: the device must attach within
 * shellAttachTimeout, and a shell with no byte either way for shellIdleTimeout ends. Its frames wait
 * (the socket stops reading) until the device is there; what it cannot pass on fast enough to a slow
 * operator cuts the operator's socket (4008) and so the shell.
 */
class OperatorShell {
  readonly #hub: Hub;
  readonly #socket: FleetSocket;
  readonly #access: OperatorAccess;
  #logger: Logger;
  #state: 'opening' | 'waiting' | 'attached' | 'ended' = 'opening';
  #sessionId: string | undefined;
  /** Why it ended, when that happened before the session was recorded. */
  #endedBefore: string | undefined;
  #subscription: BusSubscription | undefined;
  #attachTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #bytesToDevice = 0;
  #bytesFromDevice = 0;
  /** Settles once the device attached or the shell ended: the operator's frames wait for it. */
  readonly #settled: Promise<void>;
  #settle!: () => void;

  constructor(hub: Hub, socket: FleetSocket, access: OperatorAccess) {
    this.#hub = hub;
    this.#socket = socket;
    this.#access = access;
    this.#logger = hub.logger.child({ component: 'shell', side: 'operator', deviceId: access.device.id, socket: socket.id });
    this.#settled = new Promise((resolve) => (this.#settle = resolve));
  }

  start(): void {
    this.#socket.onBinary((data) => this.#bytesFromOperator(data));
    this.#socket.onText((text) => this.#controlFromOperator(text));
    this.#socket.onClose((code, reason) => this.#end(`operator closed (${code}${reason ? ` ${reason}` : ''})`));
    recheckCredentials(this.#hub, this.#socket, this.#access.credentials, this.#logger, () => {});
    this.#open().catch((error: unknown) => {
      this.#logger.error({ err: error }, 'could not open a shell');
      this.#end('internal error', { code: closeCodes.internal, reason: 'internal error' });
    });
  }

  async #open(): Promise<void> {
    const hub = this.#hub;
    const session = await hub.services.shellSessions.open(this.#access.actor, this.#access.device, hub.nodeId);
    this.#sessionId = session.id;
    this.#logger = this.#logger.child({ sessionId: session.id });
    if (this.#state === 'ended') return this.#record(this.#endedBefore ?? 'ended');
    const subscription = await hub.bus.subscribe(operatorSubject(session.id), ({ payload }) => this.#fromDevice(payload));
    if (this.#state !== 'opening') {
      subscription.unsubscribe();
      return;
    }
    this.#subscription = subscription;
    this.#state = 'waiting';
    const attachMs = hub.config.shellAttachTimeout * 1000;
    this.#attachTimer = setTimeout(() => this.#end('device did not attach', { code: shellCloseCodes.notAttached, reason: 'device did not attach' }), attachMs);
    try {
      await hub.links.call(this.#access.device.id, 'Fleetd.ShellAttach', { sessionId: session.id, url: this.#access.attachUrl + session.id }, { timeoutMs: attachMs });
    } catch (error) {
      // A device that dialed back already is attached, whatever became of the call.
      if (this.#state !== 'waiting') return;
      const why = error instanceof FleetError ? error.message : 'internal error';
      this.#end(`device did not attach: ${why}`, { code: shellCloseCodes.notAttached, reason: `device did not attach: ${why}` });
    }
  }

  async #bytesFromOperator(data: Buffer): Promise<void> {
    await this.#settled;
    if (this.#state !== 'attached') return;
    this.#bytesToDevice += data.length;
    this.#idleTimer?.refresh();
    publishBytes(this.#hub.bus, deviceSubject(this.#sessionId!), data);
  }

  async #controlFromOperator(text: string): Promise<void> {
    let frame;
    try {
      frame = readOperatorControl(text);
    } catch (error) {
      this.#socket.close(shellCloseCodes.invalidControl, (error as FleetError).message);
      return;
    }
    await this.#settled;
    if (this.#state !== 'attached') return;
    this.#hub.bus.publish(deviceSubject(this.#sessionId!), { kind: 'control', text: JSON.stringify(frame) } satisfies ShellMessage);
  }

  /** What the device's side sends; only its `attached` request is answered (true while this side waits for it). */
  #fromDevice(payload: JsonValue): boolean | undefined {
    const message = readShellMessage(payload);
    if (message?.kind === 'attached') return this.#attached();
    if (!message || this.#state === 'ended') return undefined;
    switch (message.kind) {
      case 'bytes': {
        const bytes = Buffer.from(message.data, 'base64');
        this.#bytesFromDevice += bytes.length;
        this.#idleTimer?.refresh();
        this.#socket.sendBinary(bytes);
        break;
      }
      case 'control':
        this.#socket.send(message.text);
        break;
      case 'end':
        this.#end(`device closed (${message.reason})`, { code: shellCloseCodes.ended, reason: 'device closed the shell' }, false);
        break;
    }
    return undefined;
  }

  #attached(): boolean {
    if (this.#state !== 'waiting') return false;
    this.#state = 'attached';
    clearTimeout(this.#attachTimer);
    const idleMs = this.#hub.config.shellIdleTimeout * 1000;
    this.#idleTimer = setTimeout(() => this.#end('idle timeout', { code: shellCloseCodes.idle, reason: 'idle timeout' }), idleMs);
    this.#settle();
    this.#logger.info('device attached to the shell');
    return true;
  }

  /** Ends the shell once, whichever way: the device's side is told (unless it ended it), and the session recorded. */
  #end(reason: string, close?: Close, tellDevice = true): void {
    if (this.#state === 'ended') return;
    this.#state = 'ended';
    clearTimeout(this.#attachTimer);
    clearTimeout(this.#idleTimer);
    this.#settle();
    this.#subscription?.unsubscribe();
    if (close) this.#socket.close(close.code, close.reason);
    const sessionId = this.#sessionId;
    if (sessionId === undefined) {
      this.#endedBefore = reason;
      return;
    }
    if (tellDevice) {
      try {
        this.#hub.bus.publish(deviceSubject(sessionId), { kind: 'end', reason } satisfies ShellMessage);
      } catch (error) {
        // The device's side then ends at its own idle timeout.
        this.#logger.warn({ err: error }, 'could not tell the device side the shell ended');
      }
    }
    void this.#record(reason);
  }

  async #record(reason: string): Promise<void> {
    const summary = { reason, bytesToDevice: this.#bytesToDevice, bytesFromDevice: this.#bytesFromDevice };
    this.#logger.info(summary, 'shell ended');
    await this.#hub.services.shellSessions.close(this.#access.actor, this.#sessionId!, summary).catch((error: unknown) => this.#logger.error({ err: error }, 'could not record the end of a shell'));
  }
}
