import type { JsonValue } from '../../hub/bus.ts';
import type { FleetSocket } from '../../hub/socket.ts';

/** A relayed message as it arrived: a text frame stays text, a binary frame stays binary. */
export type Frame = string | Buffer;

/** What the relay itself says to a page, as Paikea pages expect: one JSON object per frame. */
export const relayReplies = {
  deviceOffline: JSON.stringify({ error: 'device offline' }),
  notAllowed: JSON.stringify({ error: 'not allowed to send to this device' }),
  tooLarge: JSON.stringify({ error: 'frame too large to relay' }),
} as const;

export const presenceFrame = (presence: 'online' | 'offline', channel: string) => JSON.stringify({ presence, channel });

/** A frame on the bus: its text, or its bytes in base64. */
export type BusFrame = ({ text: string } | { binary: string }) & { [key: string]: JsonValue };

export const toBus = (frame: Frame): BusFrame => (typeof frame === 'string' ? { text: frame } : { binary: frame.toString('base64') });

/** The frame a bus payload carries, or undefined when it carries none. */
export function fromBus(payload: JsonValue): Frame | undefined {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) return undefined;
  if (typeof payload.text === 'string') return payload.text;
  if (typeof payload.binary === 'string') return Buffer.from(payload.binary, 'base64');
  return undefined;
}

/** Sends a frame as the kind of frame it came as; false when the socket took nothing (closed, or too slow). */
export const sendFrame = (socket: FleetSocket, frame: Frame): boolean => (typeof frame === 'string' ? socket.send(frame) : socket.sendBinary(frame));
