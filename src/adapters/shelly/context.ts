import type { Principal } from '../../core/access.ts';
import type { StateDocument } from '../../core/device-state.ts';
import type { JsonValue } from '../../hub/bus.ts';
import type { HubEventName } from '../../hub/events.ts';
import type { Hub } from '../../hub/hub.ts';
import type { Logger } from '../../log.ts';
import type { DeviceCall } from './hydrate.ts';

/** One admitted device on one socket: what the handlers of its frames act with. */
export interface ConnectedDevice {
  hub: Hub;
  device: { id: string; orgId: string; externalId: string };
  /** The device itself: only it may report its status. */
  principal: Principal;
  logger: Logger;
  call: DeviceCall;
  /**
   * Merges a status patch into the reported state after every write asked for before it, so that
   * writes land in the order the frames came; a failure is logged, never thrown.
   */
  report(patch: StateDocument): Promise<void>;
  /** How long a call fleetd makes on its own (hydration, refetches) may take. */
  refreshTimeoutMs: number;
}

/** Publishes a hub event of this device; a failure is logged, never the connection's end. */
export async function publish(connected: ConnectedDevice, name: HubEventName, data: { [key: string]: JsonValue }): Promise<void> {
  try {
    await connected.hub.events.publish({ orgId: connected.device.orgId, deviceId: connected.device.id, name, data });
  } catch (error) {
    connected.logger.warn({ err: error, event: name }, 'could not publish a device event');
  }
}
