import { parseCapabilities, type Capabilities } from '../../../services/remote/capabilities.ts';
import type { Db } from '../../../store/store.ts';

/** What RDFM shows of a device that fleetd's Device does not carry. */
export interface DeviceIdentity {
  /** PEM of the key the device signs its authentication with; null for devices that have none. */
  publicKey: string | null;
  capabilities: Capabilities;
}

/**
 * The keys and capabilities of devices the caller has read already through the devices service
 * (which authorized it), by device id.
 */
export async function deviceIdentities(db: Db, deviceIds: readonly string[]): Promise<Map<string, DeviceIdentity>> {
  const identities = new Map<string, DeviceIdentity>();
  for (let start = 0; start < deviceIds.length; start += 500) {
    const rows = await db.selectFrom('devices').select(['id', 'public_key', 'capabilities']).where('id', 'in', deviceIds.slice(start, start + 500)).execute();
    for (const row of rows) identities.set(row.id, { publicKey: row.public_key, capabilities: parseCapabilities(row.capabilities) });
  }
  return identities;
}
