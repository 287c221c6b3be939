import type { Bus, JsonValue } from '../../hub/bus.ts';

/**
 * The two halves of a shell meet on the bus, wherever their sockets are: the operator's side listens
 * on `fleetd.shell.<session>.operator`, the device's side on `fleetd.shell.<session>.device`. One
 * publisher per subject, so messages arrive in the order they were sent.
 */
export type ShellMessage =
  /** Terminal bytes, base64. */
  | { kind: 'bytes'; data: string }
  /** A checked control frame, as text. */
  | { kind: 'control'; text: string }
  /** The side that sent it ended the shell. */
  | { kind: 'end'; reason: string }
  /** The device dialed back (a request: the operator's side answers true while it waits for it). */
  | { kind: 'attached' };

/** What a shell session id looks like (newId('shl')): subjects are built from it, so nothing else gets in. */
export const sessionIdPattern = /^shl_[0-9a-hjkmnp-tv-z]{26}$/;

export const operatorSubject = (sessionId: string) => `fleetd.shell.${sessionId}.operator`;
export const deviceSubject = (sessionId: string) => `fleetd.shell.${sessionId}.device`;

/**
 * Terminal bytes to the other side, in pieces the bus carries (base64 and the envelope count): the
 * bytes stay the same, in order; where a frame was cut means nothing to a terminal.
 */
export function publishBytes(bus: Bus, subject: string, data: Buffer): void {
  const piece = Math.floor((bus.maxPayload - 256) / 4) * 3;
  for (let start = 0; start < data.length; start += piece) {
    bus.publish(subject, { kind: 'bytes', data: data.subarray(start, start + piece).toString('base64') } satisfies ShellMessage);
  }
}

/** A bus payload as a shell message; undefined for anything else. */
export function readShellMessage(payload: JsonValue): ShellMessage | undefined {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return undefined;
  switch (payload.kind) {
    case 'bytes':
      return typeof payload.data === 'string' ? { kind: 'bytes', data: payload.data } : undefined;
    case 'control':
      return typeof payload.text === 'string' ? { kind: 'control', text: payload.text } : undefined;
    case 'end':
      return typeof payload.reason === 'string' ? { kind: 'end', reason: payload.reason } : undefined;
    case 'attached':
      return { kind: 'attached' };
    default:
      return undefined;
  }
}
