import type { HubEvent } from '../../hub/events.ts';
import type { Hub } from '../../hub/hub.ts';
import { findDevice } from '../../services/devices.ts';
import type { ChannelOwner } from './access.ts';

export type Presence = 'online' | 'offline';

/** Whether the device has a connection on any node, as the registry says. */
export async function readPresence(hub: Hub, device: ChannelOwner): Promise<Presence> {
  const row = await findDevice(hub.services.store.db, device.orgId, device.id);
  return row?.connected_node ? 'online' : 'offline';
}

/** The device whose presence an event may have changed, on whichever node it connected or left. */
export const presenceEventDevice = (event: HubEvent): string | undefined =>
  (event.name === 'device.online' || event.name === 'device.offline') && event.deviceId !== null ? event.deviceId : undefined;
