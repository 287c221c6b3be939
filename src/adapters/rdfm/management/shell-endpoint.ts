import { FleetError, forbidden, unauthenticated } from '../../../core/errors.ts';
import type { WebSocketEndpoint } from '../../../http/websocket.ts';
import type { Hub } from '../../../hub/hub.ts';
import type { SocketLimits } from '../../../hub/socket.ts';
import { decodeSegment, deviceAttachUrl } from '../../shell/endpoints.ts';
import { serveOperatorShell, type OperatorAccess } from '../../shell/operator-side.ts';
import { deviceByMac } from './action-device.ts';
import { organizationOf } from './context.ts';

const managerPath = /^\/api\/v1\/devices\/([^/]{1,200})\/shell$/;
/** A terminal's output comes in many small frames, as on fleetd's own shell sockets. */
const shellMessagesPerMinute = 60_000;

/**
 * RDFM's close codes of the manager's shell socket (antmicro/rdfm:server/src/device_mgmt/shell.py):
 * decided before the upgrade, sent right after it, as RDFM refuses these only once upgraded.
 */
export const rdfmShellCloseCodes = {
  /** The device is not on its management socket (RDFM_WS_INVALID_REQUEST). */
  notConnected: 4001,
  /** The device did not report the `shell` capability (RDFM_WS_MISSING_CAPABILITIES). */
  missingCapability: 4003,
} as const;

/** A shell to open, or how to close the socket at once. */
type ManagerShell = { access: OperatorAccess } | { refusal: { code: number; reason: string } };

/**
 * RDFM's manager shell, `/api/v1/devices/<mac>/shell` (what `rdfm-mgmt devices shell <mac>` opens),
 * served by fleetd's operator shell: the session is recorded and audited, the device told to dial
 * back (an RDFM device gets `shell_attach` and dials `/api/v1/devices/<mac>/shell/attach/<uuid>`),
 * bytes relayed both ways. The token comes as on every fleetd WebSocket: the Authorization header
 * (`Bearer token=<t>` or `Bearer <t>`), a `bearer.<t>` subprotocol, or `?token=<t>`. Admins only
 * (device.shell). A caller without a token, with a role too low, or naming no device of the
 * organization is refused before the upgrade (401, 403, 404, fleetd's error body); an offline device
 * is closed 4001 and one without the shell capability 4003 after it, as RDFM does.
 */
export function rdfmShellEndpoint(hub: Hub): WebSocketEndpoint<ManagerShell> {
  const limits: Partial<SocketLimits> = { messagesPerMinute: Math.max(hub.config.wsRateLimit, shellMessagesPerMinute) };
  const options = { services: hub.services, config: hub.config };
  return {
    name: 'rdfm-shell-manager',
    kind: 'client',
    limits,
    match: (pathname) => managerPath.test(pathname),
    authenticate: async (request) => {
      const mac = decodeSegment(managerPath.exec(request.url.pathname)![1]!);
      const principal = await hub.services.authenticator.authenticate(request.credentials);
      if (!principal) throw unauthenticated('A shell needs a token: an Authorization header or ?token=');
      if (principal.kind === 'device') throw forbidden('Devices do not open shells: they attach to /api/v1/devices/<mac>/shell/attach/<uuid>');
      const actor = { principal, ip: request.remoteAddress };
      const org = await organizationOf(principal, options);
      const device = await deviceByMac(hub.services, org.id, mac);
      try {
        const ref = await hub.services.shellSessions.checkOpen(principal, org.id, device.id);
        return { access: { actor, device: ref, credentials: request.credentials, attachUrl: deviceAttachUrl(hub, request) } };
      } catch (error) {
        const refusal = refusalOf(error, device.online);
        if (!refusal) throw error;
        return { refusal };
      }
    },
    accept: (socket, _request, shell) => {
      if ('refusal' in shell) socket.close(shell.refusal.code, shell.refusal.reason);
      else serveOperatorShell(hub, socket, shell.access);
    },
  };
}

/**
 * The close a refusal of fleetd's shell check becomes: offline (503) → 4001, no `shell` capability
 * (409) → 4003, unless the device is offline too, which RDFM checks first.
 */
function refusalOf(error: unknown, online: boolean): { code: number; reason: string } | undefined {
  if (!(error instanceof FleetError)) return undefined;
  const offline = error.code === 'unavailable' && (error.details as { reason?: unknown } | undefined)?.reason === 'device_offline';
  if (offline || (error.code === 'conflict' && !online)) return { code: rdfmShellCloseCodes.notConnected, reason: 'device not connected' };
  if (error.code === 'conflict') return { code: rdfmShellCloseCodes.missingCapability, reason: 'device does not provide the shell capability' };
  return undefined;
}
