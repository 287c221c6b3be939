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

/**
 * Records numbers of a device's reported state changes (device.status events) as values of
 * sequences in the device's folder, made on their first value. Fed only the events this node
 * published, so that each change is recorded once in a cluster.
 */
export class StateRecorder {
  readonly #options: StateRecorderOptions;
  /** Changes are recorded one after another, so that a device's values reach the archives in order. */
  #tail: Promise<void> = Promise.resolve();

  constructor(options: StateRecorderOptions) {
    this.#options = options;
  }

  /** Takes a published hub event; returns at once. */
  handle(event: HubEvent): void {
    if (event.name !== 'device.status' || event.deviceId === null) return;
    const changed = event.data.changed;
    if (changed === null || typeof changed !== 'object' || Array.isArray(changed)) return;
    const fields = this.#options.match(changed);
    if (fields.length === 0) return;
    const deviceId = event.deviceId;
    this.#tail = this.#tail
      .then(() => this.#record(deviceId, Date.parse(event.at), fields))
      .catch((error: unknown) => this.#options.logger.warn({ err: error, device: deviceId }, 'could not record the device state in its sequences'));
  }

  /** Resolves once every change handed over so far is recorded (or failed). */
  async idle(): Promise<void> {
    await this.#tail;
  }

  async #record(deviceId: string, t: number, fields: Array<{ name: string; units: string | null; value: number }>): Promise<void> {
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

  /** A numeric sequence for a field, in the device's folder (made for devices older than the tree). */
  async #create(deviceId: string, field: { name: string; units: string | null }): Promise<string> {
    const folder = await this.#options.resources.deviceFolder(deviceId);
    try {
      return (await this.#options.resources.create(systemActor, folder.path, { name: field.name, type: 'sequence', sequence: { dataType: 'numeric', units: field.units } })).id;
    } catch (error) {
      // Another node made it meanwhile (the device moved between nodes).
      if (!(error instanceof FleetError && error.code === 'conflict')) throw error;
      const row = await this.#options.store.db.selectFrom('resources').select('id').where('parent_id', '=', folder.id).where('name', '=', field.name).where('type', '=', sequenceType).where('deleted', '=', 0).executeTakeFirst();
      if (!row) throw error;
      return row.id;
    }
  }
}
