import { notFound } from '../../../core/errors.ts';
import type { Device } from '../../../services/devices.ts';
import type { Services } from '../../../services/index.ts';

/** Longest MAC (fleetd external id) a path may name: far above `00:11:22:33:44:55`. */
const maxMacLength = 200;

/**
 * The device a `<mac>` path segment names: RDFM names devices by MAC, fleetd's external id. A device
 * of another organization than `orgId` is not found, as an unknown one; whether the caller may act
 * on it is still the service's decision.
 */
export async function deviceByMac(services: Services, orgId: string, mac: string): Promise<Device> {
  const device = mac.length > 0 && mac.length <= maxMacLength ? await services.devices.findByExternalId(mac) : undefined;
  if (!device || device.orgId !== orgId) throw notFound('Device');
  return device;
}
