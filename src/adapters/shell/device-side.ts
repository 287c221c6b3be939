import type { FleetError } from '../../core/errors.ts';
import type { BusSubscription, JsonValue } from '../../hub/bus.ts';
import { recheckCredentials } from '../../hub/credential-recheck.ts';
import type { Hub } from '../../hub/hub.ts';
import { closeCodes, type FleetSocket } from '../../hub/socket.ts';
import type { Logger } from '../../log.ts';
import type { Credentials } from '../../services/authenticator.ts';
import type { DeviceRef } from '../../services/remote/target-device.ts';
import { shellCloseCodes } from './close-codes.ts';
import { readDeviceControl } from './control-frames.ts';
import { deviceSubject, operatorSubject, publishBytes, readShellMessage, type ShellMessage } from './session-bus.ts';

/** A device that dialed back to its shell session, once the session took it (ShellSessions.attach). */
export interface DeviceShellAccess {
  device: DeviceRef;
  sessionId: string;
  credentials: Credentials;
}

/** How long the operator's side, on whichever node, has to take the device that dialed back. */
const attachAnswerTimeoutMs = 5_000;
/**
 * The operator's side decides when a shell is idle; this side ends its socket only a while later, for
 * when the operator's node went away without saying so.
 */
const idleMarginMs = 5_000;

/** Serves the device's socket of a shell: bytes and control frames to and from the operator's side. */
export function serveDeviceShell(hub: Hub, socket: FleetSocket, access: DeviceShellAccess): void {
  new DeviceShell(hub, socket, access).start();
}

type ShellState = 'attaching' | 'attached' | 'ended';

class DeviceShell {
  readonly #hub: Hub;
  readonly #socket: FleetSocket;
  readonly #access: DeviceShellAccess;
  readonly #logger: Logger;
  #state: ShellState = 'attaching';
  #subscription: BusSubscription | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  /** Settles once the operator's side took the device or the shell ended: the device's frames wait for it. */
  readonly #settled: Promise<void>;
  #settle!: () => void;

  constructor(hub: Hub, socket: FleetSocket, access: DeviceShellAccess) {
    this.#hub = hub;
    this.#socket = socket;
    this.#access = access;
    this.#logger = hub.logger.child({ component: 'shell', side: 'device', deviceId: access.device.id, sessionId: access.sessionId, socket: socket.id });
    this.#settled = new Promise((resolve) => (this.#settle = resolve));
  }

  start(): void {
    this.#socket.onBinary((data) => this.#bytesFromDevice(data));
    this.#socket.onText((text) => this.#controlFromDevice(text));
    this.#socket.onClose((code, reason) => this.#end(`${code}${reason ? ` ${reason}` : ''}`));
    recheckCredentials(this.#hub, this.#socket, this.#access.credentials, this.#logger, () => {});
    this.#attach().catch((error: unknown) => {
      this.#logger.error({ err: error }, 'could not attach a device to its shell');
      this.#end('internal error', { code: closeCodes.internal, reason: 'internal error' });
    });
  }

  /** Listens for the operator's side first, then tells it the device is here; without its answer, the shell is gone. */
  async #attach(): Promise<void> {
    const { sessionId } = this.#access;
    const subscription = await this.#hub.bus.subscribe(deviceSubject(sessionId), ({ payload }) => this.#fromOperator(payload));
    if (this.#state === 'ended') {
      subscription.unsubscribe();
      return;
    }
    this.#subscription = subscription;
    const answer = await this.#hub.bus.request(operatorSubject(sessionId), { kind: 'attached' } satisfies ShellMessage, { timeoutMs: attachAnswerTimeoutMs }).catch(() => false);
    // The socket may have closed while the operator's side answered.
    if ((this.#state as ShellState) === 'ended') return;
    if (answer !== true) {
      this.#end('session gone', { code: shellCloseCodes.sessionGone, reason: 'shell session ended' }, false);
      return;
    }
    this.#state = 'attached';
    const idleMs = this.#hub.config.shellIdleTimeout * 1000 + idleMarginMs;
    this.#idleTimer = setTimeout(() => this.#end('idle timeout', { code: shellCloseCodes.idle, reason: 'idle timeout' }), idleMs);
    this.#settle();
  }

  async #bytesFromDevice(data: Buffer): Promise<void> {
    await this.#settled;
    if (this.#state !== 'attached') return;
    this.#idleTimer?.refresh();
    publishBytes(this.#hub.bus, operatorSubject(this.#access.sessionId), data);
  }

  async #controlFromDevice(text: string): Promise<void> {
    let frame;
    try {
      frame = readDeviceControl(text);
    } catch (error) {
      this.#socket.close(shellCloseCodes.invalidControl, (error as FleetError).message);
      return;
    }
    await this.#settled;
    if (this.#state !== 'attached') return;
    this.#hub.bus.publish(operatorSubject(this.#access.sessionId), { kind: 'control', text: JSON.stringify(frame) } satisfies ShellMessage);
  }

  #fromOperator(payload: JsonValue): undefined {
    const message = readShellMessage(payload);
    if (!message || this.#state === 'ended') return undefined;
    switch (message.kind) {
      case 'bytes':
        this.#idleTimer?.refresh();
        this.#socket.sendBinary(Buffer.from(message.data, 'base64'));
        break;
      case 'control':
        this.#socket.send(message.text);
        break;
      case 'end':
        this.#end('operator side ended', { code: shellCloseCodes.ended, reason: 'operator closed the shell' }, false);
        break;
    }
    return undefined;
  }

  /** Ends this side once; the operator's side is told, unless it is the one that ended the shell. */
  #end(reason: string, close?: { code: number; reason: string }, tellOperator = true): void {
    if (this.#state === 'ended') return;
    this.#state = 'ended';
    clearTimeout(this.#idleTimer);
    this.#settle();
    this.#subscription?.unsubscribe();
    if (close) this.#socket.close(close.code, close.reason);
    if (!tellOperator) return;
    try {
      this.#hub.bus.publish(operatorSubject(this.#access.sessionId), { kind: 'end', reason } satisfies ShellMessage);
    } catch (error) {
      // The operator's side then ends at its idle timeout.
      this.#logger.warn({ err: error }, 'could not tell the operator side the shell ended');
    }
  }
}
