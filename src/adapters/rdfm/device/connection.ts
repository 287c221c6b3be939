import type { Hub } from '../../../hub/hub.ts';
import type { FleetSocket } from '../../../hub/socket.ts';
import type { Logger } from '../../../log.ts';
import type { Capabilities } from '../../../services/remote/capabilities.ts';
import type { DeviceRef } from '../../../services/remote/target-device.ts';
import { rdfmCloseCodes } from './close-codes.ts';

/** One RDFM device's management WebSocket, as each frame handler sees it. */
export interface RdfmConnection {
  hub: Hub;
  socket: FleetSocket;
  device: DeviceRef;
  /** The device's MAC address: its externalId, and its name in RDFM's frames. */
  mac: string;
  /** Where the device reaches this server (publicUrl, else its upgrade's Host): the base of the upload URLs it is given. */
  baseUrl: string;
  /** What the device offers, as it last reported (the stored report until it sends one). */
  capabilities: Capabilities;
  logger: Logger;
}

/** Sends one server → device frame; false when the socket is gone. */
export const sendFrame = (connection: Pick<RdfmConnection, 'socket'>, frame: { method: string } & Record<string, unknown>): boolean => connection.socket.send(JSON.stringify(frame));

/** Ends the connection as RDFM does when a device says something it should not (4001). */
export function refuse(connection: Pick<RdfmConnection, 'socket' | 'logger'>, reason: string): void {
  connection.logger.info({ reason }, 'closing an RDFM device socket: invalid request');
  connection.socket.close(rdfmCloseCodes.invalidRequest, reason);
}
