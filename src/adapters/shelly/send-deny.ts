import { closeCodes } from '../../hub/socket.ts';
import { shellyCloseReasons } from './close-codes.ts';
import { fleetdSrc } from './frames.ts';

/**
 * Shelly Fleet Manager's classic deny (shelly-gen2.md §8): the device is told to forget this server
 * and to reboot, both sent without waiting for answers, then the socket closes. Without it a denied
 * Shelly would dial in again every few seconds for ever.
 */
export const shellyDenyFrames = [
  JSON.stringify({ id: 998, src: fleetdSrc, method: 'WS.SetConfig', params: { config: { server: '#', enable: false } } }),
  JSON.stringify({ id: 999, src: fleetdSrc, method: 'Shelly.Reboot' }),
] as const;

export function sendShellyDeny(send: (text: string) => void, close: (code: number, reason: string) => void): void {
  for (const frame of shellyDenyFrames) send(frame);
  close(closeCodes.policy, shellyCloseReasons.denied);
}

/** fleetd's own devices understand a close code: their configuration is theirs to keep. */
export function sendDevicesDeny(_send: (text: string) => void, close: (code: number, reason: string) => void): void {
  close(closeCodes.denied, shellyCloseReasons.admissionDenied);
}
