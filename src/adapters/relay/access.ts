import { authorize, can, type Principal } from '../../core/access.ts';
import { badRequest, FleetError, forbidden, notFound, unauthenticated } from '../../core/errors.ts';
import type { Hub } from '../../hub/hub.ts';
import type { UpgradeRequest } from '../../http/websocket.ts';

/** A channel is named by its device's external id, in characters a URL path carries unchanged. */
// The characters of a device's external id (the channel is one), all of them plain in a URL path.
const channelPattern = /^(?!\.+$)[A-Za-z0-9._:@-]{1,128}$/;

/** The device a channel belongs to. */
export interface ChannelOwner {
  id: string;
  orgId: string;
}

/** Who a relay connection is, decided before the upgrade. */
export type RelayAccess = DeviceAccess | PageAccess;
export interface DeviceAccess {
  role: 'device';
  channel: string;
  device: ChannelOwner;
}
export interface PageAccess {
  role: 'page';
  channel: string;
  device: ChannelOwner;
  /** device.control: without it the page only watches. */
  canSend: boolean;
}

/** The channel named by a path segment; `.` and `..` are refused, as URLs would resolve them away. */
export function channelName(segment: string): string {
  if (!channelPattern.test(segment)) throw badRequest('A relay channel name is 1 to 128 of the characters A-Z a-z 0-9 . _ : @ - (not only dots), as device ids are');
  return segment;
}

export async function principalOf(hub: Hub, request: UpgradeRequest): Promise<Principal> {
  const principal = await hub.services.authenticator.authenticate(request.credentials);
  if (!principal) throw unauthenticated('The relay needs credentials: an Authorization header, a bearer.<token> subprotocol or ?token=');
  return principal;
}

/**
 * A device on a channel: its own only. A device without an external id takes the channel as its
 * own on first use, unless another device (of any organization) has that name: admission binds it,
 * as it does for keyed devices of every endpoint.
 */
export async function deviceAccess(hub: Hub, principal: Extract<Principal, { kind: 'device' }>, channel: string, request: UpgradeRequest): Promise<DeviceAccess> {
  const decision = await hub.services.admission.admit({ endpoint: 'relay', externalId: channel, principal, info: {}, remoteAddress: request.remoteAddress });
  if (decision.status !== 'accepted') throw forbidden('A device connects to its own relay channel only');
  return { role: 'device', channel, device: { id: decision.device.id, orgId: decision.device.orgId } };
}

/**
 * A page on a channel: who may read the channel's device may watch it, who may control it may send
 * to it. Channels of organizations the principal is not in, or not `inOrg`, are not found.
 */
export async function pageAccess(hub: Hub, principal: Principal, channel: string, inOrg?: string): Promise<PageAccess> {
  if (principal.kind === 'device') throw forbidden('A device connects to its own relay channel only');
  const device = await hub.services.devices.findByExternalId(channel);
  if (!device || (inOrg !== undefined && device.orgId !== inOrg)) throw notFound('Relay channel');
  const resource = { orgId: device.orgId, deviceId: device.id };
  try {
    authorize(principal, 'device.read', resource);
  } catch (error) {
    throw error instanceof FleetError && error.code === 'not_found' ? notFound('Relay channel') : error;
  }
  return { role: 'page', channel, device: { id: device.id, orgId: device.orgId }, canSend: can(principal, 'device.control', resource) };
}
