import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { forbidden } from '../../core/errors.ts';
import type { Hub } from '../../hub/hub.ts';
import { closeCodes, type FleetSocket } from '../../hub/socket.ts';
import { attachWebSockets, limitsFromConfig, type UpgradeRequest, type WebSocketEndpoint, type WebSocketOptions } from '../../http/websocket.ts';
import type { AdmissionDecision } from '../../services/admission.ts';
import { channelName, deviceAccess, pageAccess, principalOf, type DeviceAccess, type PageAccess } from './access.ts';
import { relayChannels, type RelayChannels } from './channels.ts';
import { serveDevice, servePage } from './serve.ts';

/** Paikea's devices cannot be changed: where they dial, and how they wait for admission. */
type CompatDeviceAccess = DeviceAccess | { role: 'pending'; channel: string; orgId: string; pendingId: string } | { role: 'denied'; reason: string };

export interface RelayCompat {
  /** The ports listened on (the configured ones, or those picked for port 0). */
  devicePort: number;
  pagePort: number;
  close(): Promise<void>;
}

/**
 * The relay on Paikea's own layout, for devices and pages that cannot change: devices on
 * relayCompatDevicePort and pages on relayCompatPagePort (127.0.0.1, behind the TLS proxy), the
 * channel being the URL path, in organization relayCompatOrg. Same channels as /api/relay.
 */
export async function startRelayCompat(hub: Hub): Promise<RelayCompat> {
  const options: WebSocketOptions = { limits: limitsFromConfig(hub.config), metrics: hub.metrics, logger: hub.logger.child({ component: 'relay-compat' }), trustProxy: hub.config.trustProxy };
  const channels = relayChannels(hub);
  const devices = await listen(compatDeviceEndpoint(hub, channels), hub.config.relayCompatDevicePort, hub.config.host, options);
  try {
    const pages = await listen(compatPageEndpoint(hub, channels), hub.config.relayCompatPagePort, '127.0.0.1', options);
    hub.logger.info({ devicePort: devices.port, pagePort: pages.port }, 'Paikea-compatible relay is serving');
    return {
      devicePort: devices.port,
      pagePort: pages.port,
      close: async () => {
        await Promise.all([devices.close(), pages.close()]);
      },
    };
  } catch (error) {
    await devices.close();
    throw error;
  }
}

const pathChannel = (request: UpgradeRequest) => channelName(request.url.pathname.slice(1));

/**
 * Devices: a device key when one is presented; otherwise the channel name is the device's claim,
 * judged by admission. A waiting device stays connected and is relayed nothing until decided.
 */
function compatDeviceEndpoint(hub: Hub, channels: RelayChannels): WebSocketEndpoint<CompatDeviceAccess> {
  return {
    name: 'relay-compat-device',
    kind: 'device',
    match: () => true,
    async authenticate(request) {
      const channel = pathChannel(request);
      const org = await hub.services.organizations.resolve(hub.config.relayCompatOrg);
      if (request.credentials.authorization !== undefined) {
        const principal = await principalOf(hub, request);
        if (principal.kind !== 'device' || principal.orgId !== org.id) throw forbidden('Only devices of the relay organization connect on this port');
        return deviceAccess(hub, principal, channel, request);
      }
      const decision = await hub.services.admission.admit({ endpoint: 'relay', externalId: channel, orgHint: hub.config.relayCompatOrg, info: {}, remoteAddress: request.remoteAddress });
      if (decision.status === 'pending') return { role: 'pending', channel, orgId: org.id, pendingId: decision.pendingId };
      return decided(decision, channel, org.id);
    },
    accept(socket, _request, access) {
      if (access.role === 'device') serveDevice(hub, channels, socket, access);
      else if (access.role === 'denied') socket.close(closeCodes.denied, access.reason);
      else awaitDecision(hub, channels, socket, access);
    },
  };
}

/** Accepted devices of another organization are not this listener's to serve. */
function decided(decision: Exclude<AdmissionDecision, { status: 'pending' }>, channel: string, orgId: string): CompatDeviceAccess {
  if (decision.status === 'denied') return { role: 'denied', reason: decision.reason };
  if (decision.device.orgId !== orgId) return { role: 'denied', reason: 'The device belongs to another organization' };
  return { role: 'device', channel, device: { id: decision.device.id, orgId: decision.device.orgId } };
}

function awaitDecision(hub: Hub, channels: RelayChannels, socket: FleetSocket, access: Extract<CompatDeviceAccess, { role: 'pending' }>): void {
  // Its frames (Paikea devices send their state first) go nowhere while nobody vouches for it.
  const ignore = () => {};
  socket.onText(ignore);
  socket.onBinary(ignore);
  const cancel = hub.services.admission.waitForDecision(access.pendingId, (decision) => {
    if (!socket.open) return;
    const next = decided(decision, access.channel, access.orgId);
    if (next.role === 'device') serveDevice(hub, channels, socket, next);
    else if (next.role === 'denied') socket.close(closeCodes.denied, next.reason);
  });
  socket.onClose(() => cancel());
}

/** Pages: credentials as on /api/relay (?token= for browsers), channels of the relay organization only. */
function compatPageEndpoint(hub: Hub, channels: RelayChannels): WebSocketEndpoint<PageAccess> {
  return {
    name: 'relay-compat-page',
    kind: 'client',
    match: () => true,
    async authenticate(request) {
      const channel = pathChannel(request);
      const org = await hub.services.organizations.resolve(hub.config.relayCompatOrg);
      return pageAccess(hub, await principalOf(hub, request), channel, org.id);
    },
    accept(socket, _request, access) {
      servePage(hub, channels, socket, access);
    },
  };
}

async function listen(endpoint: WebSocketEndpoint<any>, port: number, host: string, options: WebSocketOptions): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((_request, response) => {
    const body = JSON.stringify({ error: { code: 'bad_request', message: 'Only WebSocket upgrades are served on this port' } });
    response.writeHead(426, { 'content-type': 'application/json', upgrade: 'websocket', connection: 'close' }).end(body);
  });
  const sockets = attachWebSockets(server, [endpoint], options);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      await sockets.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
