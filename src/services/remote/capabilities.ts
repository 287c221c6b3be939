import { nowIso } from '../../store/page.ts';
import type { Store } from '../../store/store.ts';
import type { DeviceRef } from './target-device.ts';

/**
 * What a device says it can do besides its own protocol, by name: `shell`, `action`, `filesystem`,
 * `update-progress` (RDFM's names), and whatever else it reports.
 */
export type Capabilities = Record<string, boolean>;

export const parseCapabilities = (text: string): Capabilities => {
  const parsed = JSON.parse(text) as unknown;
  return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Capabilities) : {};
};

/**
 * The capabilities a device reports (REST for fleetd's devices, `capability_report` for RDFM's).
 * Callers have established that the device speaks for itself; nothing is authorized here.
 */
export class DeviceCapabilities {
  constructor(private readonly store: Store) {}

  /** Replaces what the device offers. */
  async set(device: DeviceRef, capabilities: Capabilities): Promise<Capabilities> {
    await this.store.db
      .updateTable('devices')
      .set({ capabilities: JSON.stringify(capabilities), updated_at: nowIso() })
      .where('id', '=', device.id)
      .where('org_id', '=', device.orgId)
      .execute();
    return capabilities;
  }
}
