import type { Hub } from '../../../hub/hub.ts';
import { closeCodes, type FleetSocket } from '../../../hub/socket.ts';
import { parseCapabilities } from '../../../services/remote/capabilities.ts';
import type { DeviceRef } from '../../../services/remote/target-device.ts';
import { rdfmCloseCodes } from './close-codes.ts';
import { sendFrame, type RdfmConnection } from './connection.ts';
import { rdfmLink } from './link.ts';
import { routeFrame } from './route-frame.ts';

/** An RDFM device whose token the upgrade accepted. */
export interface RdfmDeviceAccess {
  device: DeviceRef;
  mac: string;
  /** Where the device reaches this server, for the URLs it is given. */
  baseUrl: string;
}

/**
 * Serves an RDFM device's management WebSocket: `alert` on connect, then its frames one by one, and
 * fleetd's calls to it through a DeviceLink on whichever node they start. A second socket of a device
 * that is connected already is closed with 4002, as RDFM does (fleetd's own endpoints let the newer
 * one replace the older instead). Like RDFM, the socket outlives the token it was opened with.
 */
export function serveRdfmDevice(hub: Hub, socket: FleetSocket, access: RdfmDeviceAccess): void {
  const logger = hub.logger.child({ component: 'rdfm', deviceId: access.device.id, socket: socket.id });
  const connection: RdfmConnection = { hub, socket, device: access.device, mac: access.mac, baseUrl: access.baseUrl, capabilities: {}, logger };
  let detach: (() => Promise<void>) | undefined;
  let closed = false;
  socket.onBinary(() => socket.close(closeCodes.unsupportedData, 'binary frames are not accepted'));
  socket.onClose(() => {
    closed = true;
    detach?.().catch((error: unknown) => logger.warn({ err: error }, 'could not take an RDFM device offline'));
  });
  const start = async (): Promise<void> => {
    const row = await hub.services.store.db.selectFrom('devices').select(['connected_node', 'capabilities']).where('id', '=', access.device.id).executeTakeFirst();
    if (!row || row.connected_node !== null || hub.links.isLocal(access.device.id)) {
      socket.close(rdfmCloseCodes.duplicate, 'device already connected');
      return;
    }
    connection.capabilities = parseCapabilities(row.capabilities);
    socket.onText((text) => routeFrame(connection, text));
    // First, as RDFM's server does: the runs that wait go out once the link below says the device is online.
    sendFrame(connection, { method: 'alert', alert: { message: 'connected' } });
    const release = await hub.links.attach(access.device, rdfmLink(connection));
    if (closed) return release();
    detach = release;
  };
  start().catch((error: unknown) => {
    logger.error({ err: error }, 'could not link an RDFM device');
    socket.close(closeCodes.internal, 'internal error');
  });
}
