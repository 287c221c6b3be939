import type { StateDocument } from '../../core/device-state.ts';
import { FleetError, notFound } from '../../core/errors.ts';
import type { Database } from '../../store/schema.ts';
import { nowIso } from '../../store/page.ts';
import type { Store } from '../../store/store.ts';
import { isDocument } from './frames.ts';

/**
 * What a Shelly device says of itself besides its status: `Shelly.GetDeviceInfo` (model, firmware,
 * name) and its configuration. Written by the connection, not by a person, so it bypasses
 * Devices.update (which audits an operator's change) and writes the registry row directly:
 * model ← info.model, firmware ← info.ver, name ← info.name while the device still has its default
 * name (its external id), and metadata.shelly = {info, config}.
 */
export interface ShellyInfoChange {
  info?: StateDocument;
  /** The whole configuration (hydration). */
  config?: StateDocument;
  /** Some components' configuration (a config_changed or component_added event); null removes one. */
  components?: { [key: string]: StateDocument | null };
}

/** As large as Devices lets metadata grow, so that an operator's later edit of it still fits. */
const maxMetadataBytes = 64 * 1024;
/** Registry fields are shown in lists; a device's own text beyond this is not taken. */
const maxTextLength = 200;
const writeAttempts = 5;

type DeviceRow = Database['devices'];

export async function storeShellyInfo(store: Store, deviceId: string, change: ShellyInfoChange): Promise<void> {
  for (let attempt = 0; attempt < writeAttempts; attempt++) {
    const row = await store.db.selectFrom('devices').selectAll().where('id', '=', deviceId).executeTakeFirst();
    if (!row) throw notFound('Device');
    const values = changedValues(row, change);
    // Compare-and-set on what this computed from, so a concurrent edit of the metadata or name is kept.
    const written = await store.db
      .updateTable('devices')
      .set(values)
      .where('id', '=', deviceId)
      .where('metadata', '=', row.metadata)
      .where('name', '=', row.name)
      .executeTakeFirst();
    if (written.numUpdatedRows === 1n) return;
  }
  throw new FleetError('conflict', `The metadata of ${deviceId} changed too often to update; try again`);
}

function changedValues(row: DeviceRow, change: ShellyInfoChange): Partial<DeviceRow> {
  const metadata = JSON.parse(row.metadata) as StateDocument;
  const shelly: StateDocument = isDocument(metadata.shelly) ? { ...metadata.shelly } : {};
  const values: Partial<DeviceRow> = { updated_at: nowIso() };
  if (change.info) {
    shelly.info = change.info;
    const model = text(change.info.model);
    const firmware = text(change.info.ver);
    const name = text(change.info.name);
    if (model !== undefined) values.model = model;
    if (firmware !== undefined) values.firmware = firmware;
    if (name !== undefined && name.length > 0 && row.name === row.external_id) values.name = name;
  }
  if (change.config) shelly.config = change.config;
  if (change.components) {
    const config: StateDocument = isDocument(shelly.config) ? { ...shelly.config } : {};
    for (const [key, value] of Object.entries(change.components)) {
      if (value === null) delete config[key];
      else config[key] = value;
    }
    shelly.config = config;
  }
  const serialized = JSON.stringify({ ...metadata, shelly });
  const bytes = Buffer.byteLength(serialized);
  if (bytes > maxMetadataBytes) throw new FleetError('payload_too_large', `The Shelly info and configuration would make the metadata ${bytes} bytes, above ${maxMetadataBytes}`);
  values.metadata = serialized;
  return values;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.length <= maxTextLength ? value : undefined;
}
