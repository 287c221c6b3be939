import type { IncomingMessage } from 'node:http';
import { badRequest, forbidden, notFound, unauthenticated } from '../../core/errors.ts';
import { baseUrlOf } from '../../http/base-url.ts';
import type { UpgradeRequest, WebSocketEndpoint } from '../../http/websocket.ts';
import type { Hub } from '../../hub/hub.ts';
import type { SocketLimits } from '../../hub/socket.ts';
import { serveDeviceShell, type DeviceShellAccess } from './device-side.ts';
import { serveOperatorShell, type OperatorAccess } from './operator-side.ts';
import { sessionIdPattern } from './session-bus.ts';

const operatorPath = /^\/api\/orgs\/([^/]{1,200})\/devices\/([^/]{1,200})\/shell$/;
const devicePrefix = '/api/devices/shell/';
/** A terminal's output comes in many small frames (each read of the PTY): far more than the API's usual rate. */
const shellMessagesPerMinute = 60_000;

/**
 * The two WebSocket ends of a remote shell: `/api/orgs/<org>/devices/<device>/shell` for the
 * operator (admins, on a device that offers `shell` and is connected), and
 * `/api/devices/shell/<session>` where the device dials back with its own credential.
 */
export function shellEndpoints(hub: Hub): WebSocketEndpoint<any>[] {
  const limits: Partial<SocketLimits> = { messagesPerMinute: Math.max(hub.config.wsRateLimit, shellMessagesPerMinute) };
  const operator: WebSocketEndpoint<OperatorAccess> = {
    name: 'shell-operator',
    kind: 'client',
    limits,
    match: (pathname) => operatorPath.test(pathname),
    authenticate: (request) => authenticateOperator(hub, request),
    accept: (socket, _request, access) => serveOperatorShell(hub, socket, access),
  };
  const device: WebSocketEndpoint<DeviceShellAccess> = {
    name: 'shell-device',
    kind: 'device',
    limits,
    match: (pathname) => pathname.startsWith(devicePrefix),
    authenticate: (request) => authenticateDevice(hub, request),
    accept: (socket, _request, access) => serveDeviceShell(hub, socket, access),
  };
  return [operator, device];
}

async function authenticateOperator(hub: Hub, request: UpgradeRequest): Promise<OperatorAccess> {
  const match = operatorPath.exec(request.url.pathname)!;
  const org = decodeSegment(match[1]!);
  const deviceId = decodeSegment(match[2]!);
  const principal = await hub.services.authenticator.authenticate(request.credentials);
  if (!principal) throw unauthenticated('A shell needs credentials: an Authorization header, a bearer.<token> subprotocol or ?token=');
  if (principal.kind === 'device') throw forbidden('Devices do not open shells: they dial back to /api/devices/shell/<session>');
  const device = await hub.services.shellSessions.checkOpen(principal, org, deviceId);
  return { actor: { principal, ip: request.remoteAddress }, device, credentials: request.credentials, attachUrl: deviceAttachUrl(hub, request) };
}

async function authenticateDevice(hub: Hub, request: UpgradeRequest): Promise<DeviceShellAccess> {
  const sessionId = request.url.pathname.slice(devicePrefix.length);
  if (!sessionIdPattern.test(sessionId)) throw notFound('Shell session');
  const principal = await hub.services.authenticator.authenticate(request.credentials);
  if (!principal) throw unauthenticated('A device dials back with its own credential');
  if (principal.kind !== 'device') throw forbidden('Only the device itself attaches to its shell');
  const device = { id: principal.deviceId, orgId: principal.orgId };
  await hub.services.shellSessions.attach(device, sessionId);
  return { device, sessionId, credentials: request.credentials };
}

/** A path segment as text; 400 for a malformed escape. */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest('Malformed path segment');
  }
}

/**
 * Where a device dials back for its shell, as a WebSocket URL (ws:// or wss://) without the session
 * id. fleetd speaks plain HTTP (TLS ends at a proxy, which X-Forwarded-Proto names), so the upgrade's
 * socket says nothing more.
 */
export function deviceAttachUrl(hub: Hub, request: UpgradeRequest): string {
  const base = baseUrlOf({ headers: request.headers, socket: {} as IncomingMessage['socket'] }, hub.config);
  return `${base.replace(/^http/, 'ws')}${devicePrefix}`;
}
