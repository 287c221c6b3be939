import { updatesAvailableSubject } from '../services/updates/notices.ts';
import type { BusSubscription } from './bus.ts';
import type { Hub } from './hub.ts';

/** What a device that can update hears when something may wait for it: it should check now. */
export const updateAvailableMethod = 'Fleetd.UpdateAvailable';

/**
 * Passes update notices (published by the groups and deployments services on any node) to the
 * devices connected to this node, as a `Fleetd.UpdateAvailable` notification on their socket. Links
 * without notifications (Shelly devices) are skipped.
 */
export function startUpdateNotices(hub: Pick<Hub, 'bus' | 'links' | 'logger'>): Promise<BusSubscription> {
  return hub.bus.subscribe(updatesAvailableSubject, ({ payload }) => {
    const deviceIds = (payload as { deviceIds?: unknown } | null)?.deviceIds;
    if (!Array.isArray(deviceIds)) {
      hub.logger.warn('an update notice without device ids');
      return undefined;
    }
    for (const deviceId of deviceIds) if (typeof deviceId === 'string') hub.links.notifyLocal(deviceId, updateAvailableMethod, {});
    return undefined;
  });
}
