import { changedFields, type StateDocument } from '../../core/device-state.ts';
import type { JsonValue } from '../../hub/bus.ts';
import { publish, type ConnectedDevice } from './context.ts';
import { statusOf } from './frames.ts';

/**
 * NotifyStatus (changed components, each with some fields) and NotifyFullStatus (all of them):
 * both are merged into the reported state as the device itself, and watchers are told only what
 * changed. Shelly's `null` fields and empty objects are removed by the merge, as in every state.
 */
export function handleNotifyStatus(connected: ConnectedDevice, params: StateDocument): Promise<void> {
  return connected.report(statusOf(params));
}

/** One write of the reported state; ConnectedDevice.report runs it in order. */
export async function reportStatus(connected: ConnectedDevice, patch: StateDocument): Promise<void> {
  if (Object.keys(patch).length === 0) return;
  const { device, principal } = connected;
  const { changed } = await connected.hub.services.devices.report(principal, device.orgId, device.id, patch);
  if (changed) await publish(connected, 'device.status', { changed: changed as JsonValue });
}

/**
 * Hydration read the whole status: the reported state becomes exactly that, so components the
 * device no longer has (removed while it was away) go too, not only what the merge would overwrite.
 */
export async function replaceStatus(connected: ConnectedDevice, status: StateDocument): Promise<void> {
  const { device, principal } = connected;
  const { reported } = await connected.hub.services.devices.state(principal, device.orgId, device.id);
  const patch = changedFields(reported, status);
  if (patch) await reportStatus(connected, patch);
}
