import type { IncomingMessage } from 'node:http';
import { forbidden, notFound, unauthenticated } from '../../../core/errors.ts';
import { baseUrlOf } from '../../../http/base-url.ts';
import type { UpgradeRequest, WebSocketEndpoint } from '../../../http/websocket.ts';
import type { Hub } from '../../../hub/hub.ts';
import type { SocketLimits } from '../../../hub/socket.ts';
import { serveDeviceShell, type DeviceShellAccess } from '../../shell/device-side.ts';
import type { DeviceRef } from '../../../services/remote/target-device.ts';
import { serveRdfmDevice, type RdfmDeviceAccess } from './serve.ts';
import { uuidToSession } from './shell-uuid.ts';

const managementPath = '/api/v1/devices/ws';
const attachPath = /^\/api\/v1\/devices\/([^/]{1,200})\/shell\/attach\/([^/]{1,100})$/;
/** A terminal's output comes in many small frames, as on fleetd's own shell sockets. */
const shellMessagesPerMinute = 60_000;

/** A path segment as text; a malformed escape names nothing. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return '';
  }
}

/** The RDFM device behind the upgrade's token (`Authorization: Bearer token=<token>`), with its MAC; refused (401) before the upgrade otherwise. */
async function rdfmDevice(hub: Hub, request: UpgradeRequest): Promise<{ device: DeviceRef; mac: string }> {
  const principal = await hub.services.authenticator.authenticate(request.credentials);
  if (!principal || principal.kind !== 'device') throw unauthenticated('device unauthorized');
  const device = { id: principal.deviceId, orgId: principal.orgId };
  const row = await hub.services.store.db.selectFrom('devices').select('external_id').where('id', '=', device.id).executeTakeFirst();
  if (!row?.external_id) throw unauthenticated('device unauthorized');
  return { device, mac: row.external_id };
}

/** Where the device reached this server: fleetd terminates no TLS itself, so the scheme is a trusted proxy's word, as on every route. */
const upgradeBaseUrl = (hub: Hub, request: UpgradeRequest): string => baseUrlOf({ headers: request.headers, socket: {} } as IncomingMessage, hub.config);

/**
 * RDFM's device WebSockets: the management socket `/api/v1/devices/ws`, and
 * `/api/v1/devices/<mac>/shell/attach/<uuid>` where the device dials back for a shell, served by
 * fleetd's shell relay (the UUID is the fleetd session's 16 bytes).
 */
export function rdfmDeviceEndpoints(hub: Hub): WebSocketEndpoint<any>[] {
  const management: WebSocketEndpoint<RdfmDeviceAccess> = {
    name: 'rdfm',
    kind: 'device',
    match: (pathname) => pathname === managementPath,
    authenticate: async (request) => ({ ...(await rdfmDevice(hub, request)), baseUrl: upgradeBaseUrl(hub, request) }),
    accept: (socket, _request, access) => serveRdfmDevice(hub, socket, access),
  };
  const limits: Partial<SocketLimits> = { messagesPerMinute: Math.max(hub.config.wsRateLimit, shellMessagesPerMinute) };
  const shell: WebSocketEndpoint<DeviceShellAccess> = {
    name: 'rdfm-shell',
    kind: 'device',
    limits,
    match: (pathname) => attachPath.test(pathname),
    authenticate: async (request) => {
      const [, mac, uuid] = attachPath.exec(request.url.pathname)!;
      const sessionId = uuidToSession(decodeSegment(uuid!));
      if (!sessionId) throw notFound('Shell session');
      const { device, mac: own } = await rdfmDevice(hub, request);
      if (decodeSegment(mac!).toLowerCase() !== own.toLowerCase()) throw forbidden('A device attaches only to its own shell sessions');
      await hub.services.shellSessions.attach(device, sessionId);
      return { device, sessionId, credentials: request.credentials };
    },
    accept: (socket, _request, access) => serveDeviceShell(hub, socket, access),
  };
  return [management, shell];
}
