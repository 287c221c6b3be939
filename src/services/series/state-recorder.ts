import { FleetError } from '../../core/errors.ts';
import type { HubEvent } from '../../hub/events.ts';
import type { Logger } from '../../log.ts';
import type { Store } from '../../store/store.ts';
import { systemActor } from '../actor.ts';
import { findDeviceFolder } from '../resources/device-folders.ts';
import type { ResourceTree } from '../resources/tree.ts';
import type { StateMatcher } from './state-fields.ts';
import type { IngestResult, IngestValue } from './write-batch.ts';

export interface StateRecorderOptions {
  store: Store;
  resources: Pick<ResourceTree, 'create' | 'deviceFolder'>;
  ingest: (values: IngestValue[]) => Promise<Array<IngestResult>>;
  match: StateMatcher;
  logger: Logger;
}

const sequenceType = 21;
/** The text sequence of a device folder that keeps what the device notified (a Shelly NotifyEvent entry, say). */
export const notificationSequence = 'notifications';

interface RecordedField {
  name: string;
  units: string | null;
  dataType: 'numeric' | 'text';
  value: number | string;
}

/** A notification as one text value: its data as JSON (for a Shelly event, {event, component, ...}). */
const notificationField = (event: HubEvent): RecordedField => ({ name: notificationSequence, units: null, dataType: 'text', value: JSON.stringify(event.data) });

/**
 * Records numbers of a device's reported state changes (device.status events) as values of
 * sequences in the device's folder, and its notifications (device.notification) as values of its
 * `notifications` text sequence; sequences are made on their first value. Fed only the events this
 * node published, so that each change is recorded once in a cluster.
 */
export class StateRecorder {
  readonly #options: StateRecorderOptions;
  /** Changes are recorded one after another, so that a device's values reach the archives in order. */
  #tail: Promise<void> = Promise.resolve();
  /** The time each device's last values got: two events within a millisecond would otherwise be one value. */
  readonly #lastT = new Map<string, number>();

  constructor(options: StateRecorderOptions) {
    this.#options = options;
  }

  /** Takes a published hub event; returns at once. */
  handle(event: HubEvent): void {
    if (event.deviceId === null) return;
    const fields = event.name === 'device.status' ? this.#statusFields(event) : event.name === 'device.notification' ? [notificationField(event)] : [];
    if (fields.length === 0) return;
    const deviceId = event.deviceId;
    const t = Math.max(Date.parse(event.at), (this.#lastT.get(deviceId) ?? 0) + 1);
    this.#lastT.set(deviceId, t);
    this.#tail = this.#tail
      .then(() => this.#record(deviceId, t, fields))
      .catch((error: unknown) => this.#options.logger.warn({ err: error, device: deviceId }, 'could not record the device state in its sequences'));
  }

  #statusFields(event: HubEvent): RecordedField[] {
    const changed = event.data.changed;
    if (changed === null || typeof changed !== 'object' || Array.isArray(changed)) return [];
    return this.#options.match(changed).map((field) => ({ ...field, dataType: 'numeric' }));
  }

  /** Resolves once every change handed over so far is recorded (or failed). */
  async idle(): Promise<void> {
    await this.#tail;
  }

  async #record(deviceId: string, t: number, fields: RecordedField[]): Promise<void> {
    const { store, ingest } = this.#options;
    const folder = await findDeviceFolder(store.db, deviceId);
    const names = fields.map((f) => f.name);
    const existing = folder
      ? await store.db.selectFrom('resources').select(['id', 'name']).where('parent_id', '=', folder.id).where('name', 'in', names).where('type', '=', sequenceType).where('deleted', '=', 0).execute()
      : [];
    const ids = new Map(existing.map((row) => [row.name, row.id]));
    for (const field of fields) if (!ids.has(field.name)) ids.set(field.name, await this.#create(deviceId, field));
    const results = await ingest(fields.map((f) => ({ sequenceId: ids.get(f.name)!, t, value: f.value })));
    for (const result of results) if ('error' in result) throw result.error;
  }

  /** A sequence for a field, in the device's folder (made for devices older than the tree). */
  async #create(deviceId: string, field: RecordedField): Promise<string> {
    const folder = await this.#options.resources.deviceFolder(deviceId);
    try {
      return (await this.#options.resources.create(systemActor, folder.path, { name: field.name, type: 'sequence', sequence: { dataType: field.dataType, units: field.units } })).id;
    } catch (error) {
      // Another node made it meanwhile (the device moved between nodes).
      if (!(error instanceof FleetError && error.code === 'conflict')) throw error;
      const row = await this.#options.store.db.selectFrom('resources').select('id').where('parent_id', '=', folder.id).where('name', '=', field.name).where('type', '=', sequenceType).where('deleted', '=', 0).executeTakeFirst();
      if (!row) throw error;
      return row.id;
    }
  }
}
