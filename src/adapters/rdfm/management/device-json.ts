import type { StateDocument } from '../../../core/device-state.ts';
import type { Device } from '../../../services/devices.ts';
import type { Capabilities } from '../../../services/remote/capabilities.ts';
import type { RdfmRouteOptions } from '../plugin.ts';
import { rfc822 } from '../wire.ts';
import { deviceIdentities } from './device-identity.ts';

interface RdfmDeviceCommon {
  id: number;
  name: string;
  mac_address: string | null;
  capabilities: Capabilities;
  metadata: StateDocument;
  /** RFC 822. */
  last_access: string | null;
  public_key: string | null;
}

/** RDFM's v1 Device: the one group that decides for it. */
export interface RdfmDeviceV1 extends RdfmDeviceCommon {
  group: number | null;
}

/** RDFM's v2 Device: every group it is in, and whether it is connected. */
export interface RdfmDeviceV2 extends RdfmDeviceCommon {
  groups: number[];
  connected: boolean;
}

/**
 * Devices as RDFM shows them, built for the whole list at once: their RDFM integers (and those of
 * their groups) are numbered in one batch per kind. v1 names the group that decides for the device
 * (fleetd's effective group), v2 all of its groups.
 */
export function rdfmDevices(options: RdfmRouteOptions, devices: Device[], version: 1): Promise<RdfmDeviceV1[]>;
export function rdfmDevices(options: RdfmRouteOptions, devices: Device[], version: 2): Promise<RdfmDeviceV2[]>;
export function rdfmDevices(options: RdfmRouteOptions, devices: Device[], version: 1 | 2): Promise<RdfmDeviceV1[] | RdfmDeviceV2[]>;

export async function rdfmDevices(options: RdfmRouteOptions, devices: Device[], version: 1 | 2): Promise<RdfmDeviceV1[] | RdfmDeviceV2[]> {
  const { services, ids } = options;
  const identities = await deviceIdentities(services.store.db, devices.map((device) => device.id));
  const groupsOf = new Map<string, string[]>();
  for (const orgId of new Set(devices.map((device) => device.orgId))) {
    const deviceIds = devices.filter((device) => device.orgId === orgId).map((device) => device.id);
    if (version === 2) for (const [deviceId, groupIds] of await services.groups.groupIdsOfMany(orgId, deviceIds)) groupsOf.set(deviceId, groupIds);
    else for (const [deviceId, group] of await services.groups.effectiveGroupsOf(orgId, deviceIds)) groupsOf.set(deviceId, group ? [group.id] : []);
  }
  const deviceNumbers = await ids.numbers('device', devices.map((device) => device.id));
  const groupNumbers = await ids.numbers('group', [...groupsOf.values()].flat());
  const common = (device: Device): RdfmDeviceCommon => {
    const identity = identities.get(device.id);
    return {
      id: deviceNumbers.get(device.id)!,
      name: device.name,
      mac_address: device.externalId,
      capabilities: identity?.capabilities ?? {},
      metadata: device.metadata,
      last_access: device.lastSeenAt === null ? null : rfc822(device.lastSeenAt),
      public_key: identity?.publicKey ?? null,
    };
  };
  const groupNumbersOf = (device: Device) => groupsOf.get(device.id)!.map((id) => groupNumbers.get(id)!);
  if (version === 1) return devices.map((device) => ({ ...common(device), group: groupNumbersOf(device)[0] ?? null }));
  return devices.map((device) => ({ ...common(device), groups: groupNumbersOf(device).sort((a, b) => a - b), connected: device.online }));
}
