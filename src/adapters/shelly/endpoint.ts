import { forbidden, unauthenticated } from '../../core/errors.ts';
import type { UpgradeRequest, WebSocketEndpoint } from '../../http/websocket.ts';
import type { Hub } from '../../hub/hub.ts';
import type { Credentials } from '../../services/authenticator.ts';
import { sendDevicesDeny, sendShellyDeny } from './send-deny.ts';
import { DeviceSession, type DeviceUpgrade, type Flavor, type SessionOptions } from './session.ts';

const shelly: Flavor = { endpoint: 'shelly', deny: sendShellyDeny, desired: false, notifications: false };
const devices: Flavor = { endpoint: 'devices', deny: sendDevicesDeny, desired: true, notifications: true };

/**
 * The device endpoints: `/shelly`, where unchanged Shelly Gen2+ devices dial in (without
 * credentials, as Fleet Manager takes them), and `/api/devices/ws`, fleetd's own devices speaking
 * the same protocol with a device key or an enrollment token.
 */
export function shellyEndpoints(hub: Hub, options: SessionOptions = {}): WebSocketEndpoint<DeviceUpgrade>[] {
  return [endpoint(hub, shelly, '/shelly', options), endpoint(hub, devices, '/api/devices/ws', options)];
}

function endpoint(hub: Hub, flavor: Flavor, path: string, options: SessionOptions): WebSocketEndpoint<DeviceUpgrade> {
  return {
    name: flavor.endpoint,
    kind: 'device',
    match: (pathname) => pathname === path,
    authenticate: (request) => authenticate(hub, flavor, request),
    accept(socket, request, auth) {
      new DeviceSession(hub, socket, request, auth, flavor, options);
    },
  };
}

/**
 * Who connects, before the upgrade: a device key is checked here (a wrong or revoked one is
 * refused with 401, a person's credentials with 403: people do not connect as devices); an
 * enrollment token is only passed on, for admission to check against the device's hello.
 */
async function authenticate(hub: Hub, flavor: Flavor, request: UpgradeRequest): Promise<DeviceUpgrade> {
  const token = request.url.searchParams.get('token') ?? undefined;
  const enrollmentToken = token?.startsWith('fe_') ? token : undefined;
  const orgHint = request.url.searchParams.get('org') ?? undefined;
  const principal = await hub.services.authenticator.authenticate(withoutToken(request.credentials, enrollmentToken));
  if (principal && principal.kind !== 'device') throw forbidden('Device endpoints take device keys, not the credentials of a person');
  if (flavor.endpoint === 'devices' && !principal && !enrollmentToken && hub.services.admission.policyFor('devices') === 'token') {
    throw unauthenticated('A device key or an enrollment token is required');
  }
  return { ...(principal && { principal }), ...(enrollmentToken && { enrollmentToken }), ...(orgHint && { orgHint }) };
}

/** The upgrade reads `?token=` as a credential; an enrollment token is none, and no authenticator may refuse it. */
function withoutToken(credentials: Credentials, enrollmentToken: string | undefined): Credentials {
  if (enrollmentToken === undefined || credentials.authorization === undefined) return credentials;
  if (!credentials.authorization.endsWith(` ${enrollmentToken}`) && !credentials.authorization.endsWith(`=${enrollmentToken}`)) return credentials;
  const { authorization: _authorization, ...rest } = credentials;
  return rest;
}
