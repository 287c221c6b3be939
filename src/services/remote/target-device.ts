import { authorize, type Action, type Principal } from '../../core/access.ts';
import { conflict, FleetError, notFound } from '../../core/errors.ts';
import type { Db } from '../../store/store.ts';
import { findDevice } from '../devices.ts';
import type { Organizations } from '../organizations.ts';
import { parseCapabilities, type Capabilities } from './capabilities.ts';

/** A device as remote operations need it: who it is, what it offers, whether it is connected. */
export interface TargetDevice {
  id: string;
  orgId: string;
  capabilities: Capabilities;
  online: boolean;
}

/** A device the caller names, both known to the service already (no authorization: the caller vouches). */
export interface DeviceRef {
  id: string;
  orgId: string;
}

/**
 * The device an operator acts on, once `action` is allowed on it: another organization's, or an
 * unknown one, is not found.
 */
export async function targetDevice(db: Db, organizations: Organizations, principal: Principal, orgIdOrSlug: string, deviceId: string, action: Action): Promise<TargetDevice> {
  const org = await organizations.resolve(orgIdOrSlug);
  authorize(principal, action, { orgId: org.id, deviceId });
  const row = await findDevice(db, org.id, deviceId);
  if (!row) throw notFound('Device');
  return { id: row.id, orgId: row.org_id, capabilities: parseCapabilities(row.capabilities), online: row.connected_node !== null };
}

/** Refuses (409) a device that did not say it can do `capability`. */
export function requireCapability(device: TargetDevice, capability: string): void {
  if (device.capabilities[capability] !== true) throw conflict(`The device does not offer the ${capability} capability`, { capability });
}

/** Refuses (503) a device that is not connected now. */
export function requireOnline(device: TargetDevice): void {
  if (!device.online) throw new FleetError('unavailable', `Device ${device.id} is offline`, { details: { reason: 'device_offline' } });
}
