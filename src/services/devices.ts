import type { SelectQueryBuilder } from 'kysely';
import { authorize, type Principal } from '../core/access.ts';
import { mergeState, stateDelta, changedFields, type StateDocument } from '../core/device-state.ts';
import { FleetError, notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Database } from '../store/schema.ts';
import { isUniqueViolation, type Db, type Store } from '../store/store.ts';
import { nowIso, paginate, type Page, type PageRequest } from '../store/page.ts';
import type { Actor } from './actor.ts';
import { recordAudit } from './audit.ts';
import { selectDevices, type DeviceFilter } from './device-query.ts';
import type { Organizations } from './organizations.ts';
import { deleteDeviceFolder, insertDeviceFolder } from './resources/device-folders.ts';

export interface Device {
  id: string;
  orgId: string;
  name: string;
  /** The id the device calls itself by (Shelly `src`, relay channel, check-in id); null when only its key names it. */
  externalId: string | null;
  model: string | null;
  firmware: string | null;
  tags: string[];
  metadata: StateDocument;
  online: boolean;
  /** The fleetd node holding the device's connection, while it is online. */
  connectedNode: string | null;
  lastSeenAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface DeviceState {
  reported: StateDocument;
  reportedVersion: number;
  desired: StateDocument;
  desiredVersion: number;
  /** What of `desired` the device has not reported yet; null when nothing. */
  delta: StateDocument | null;
}

export type { DeviceFilter } from './device-query.ts';

export interface DeviceChanges {
  name?: string;
  /** Admins only: which connecting device this entry is. */
  externalId?: string | null;
  model?: string | null;
  firmware?: string | null;
  /** The whole new list of tags. */
  tags?: string[];
  /** A merge patch: fields set to null are removed. */
  metadata?: StateDocument;
}

type DeviceRow = Database['devices'];

/** A state document is read on every change of it; beyond this size it is refused. */
const maxStateBytes = 64 * 1024;
/** Concurrent writers of one document retry on a version conflict this many times. */
const stateWriteAttempts = 5;

const toDevice = (row: DeviceRow, tags: string[]): Device => ({
  id: row.id,
  orgId: row.org_id,
  name: row.name,
  externalId: row.external_id,
  model: row.model,
  firmware: row.firmware,
  tags,
  metadata: JSON.parse(row.metadata) as StateDocument,
  online: row.connected_node !== null,
  connectedNode: row.connected_node,
  lastSeenAt: row.last_seen_at,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const toState = (row: Pick<DeviceRow, 'reported' | 'reported_version' | 'desired' | 'desired_version'>): DeviceState => {
  const reported = JSON.parse(row.reported) as StateDocument;
  const desired = JSON.parse(row.desired) as StateDocument;
  return { reported, reportedVersion: row.reported_version, desired, desiredVersion: row.desired_version, delta: stateDelta(desired, reported) ?? null };
};

export async function findDevice(db: Db, orgId: string, deviceId: string): Promise<DeviceRow | undefined> {
  return db.selectFrom('devices').selectAll().where('org_id', '=', orgId).where('id', '=', deviceId).executeTakeFirst();
}

async function tagsOf(db: Db, deviceIds: string[]): Promise<Map<string, string[]>> {
  const tags = new Map<string, string[]>(deviceIds.map((id) => [id, []]));
  if (deviceIds.length === 0) return tags;
  const rows = await db.selectFrom('device_tags').select(['device_id', 'tag']).where('device_id', 'in', deviceIds).orderBy('tag').execute();
  for (const row of rows) tags.get(row.device_id)!.push(row.tag);
  return tags;
}

/** One page of the devices a query selects, with their tags. */
export async function pageOfDevices(db: Db, query: SelectQueryBuilder<Database, 'devices', DeviceRow>, page: PageRequest): Promise<Page<Device>> {
  const result = await paginate(query, 'id', page);
  const tags = await tagsOf(db, result.items.map((row) => row.id));
  return { items: result.items.map((row) => toDevice(row, tags.get(row.id)!)), nextCursor: result.nextCursor };
}

/** What a new device starts with; the public key is that of a device checking in with signatures. */
export type NewDevice = { name: string } & Omit<DeviceChanges, 'name'> & { publicKey?: string | null };

const externalIdTaken = (externalId: string | null | undefined) => new FleetError('conflict', `A device with externalId ${JSON.stringify(externalId)} exists already`);

/** Inserts a device, its tags and its folder; the caller authorizes and audits it in the same transaction. */
export async function insertDevice(db: Db, orgId: string, input: NewDevice): Promise<Device> {
  const now = nowIso();
  const row: DeviceRow = {
    id: newId('dev'),
    org_id: orgId,
    name: input.name,
    model: input.model ?? null,
    firmware: input.firmware ?? null,
    metadata: serializeState(mergeState({}, input.metadata ?? {}), 'metadata'),
    last_seen_at: null,
    connected_node: null,
    reported: '{}',
    reported_version: 0,
    desired: '{}',
    desired_version: 0,
    external_id: input.externalId ?? null,
    public_key: input.publicKey ?? null,
    checkin_at: null,
    capabilities: '{}',
    created_at: now,
    updated_at: now,
  };
  const tags = [...new Set(input.tags ?? [])].sort();
  try {
    await db.insertInto('devices').values(row).execute();
  } catch (error) {
    if (isUniqueViolation(error)) throw externalIdTaken(input.externalId);
    throw error;
  }
  if (tags.length > 0) await db.insertInto('device_tags').values(tags.map((tag) => ({ device_id: row.id, tag }))).execute();
  await insertDeviceFolder(db, { id: row.id, orgId, name: row.name });
  return toDevice(row, tags);
}

function serializeState(document: StateDocument, what: string): string {
  const text = JSON.stringify(document);
  if (Buffer.byteLength(text) > maxStateBytes) throw new FleetError('payload_too_large', `The ${what} would exceed ${maxStateBytes} bytes`);
  return text;
}

/**
 * The device registry: identity, tags and metadata of each device, where it is connected, and its
 * reported and desired state (see core/device-state.ts).
 */
export class Devices {
  constructor(
    private readonly store: Store,
    private readonly organizations: Organizations,
  ) {}

  async list(principal: Principal, orgIdOrSlug: string, filter: DeviceFilter, page: PageRequest): Promise<Page<Device>> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(principal, 'device.read', { orgId: org.id });
    return pageOfDevices(this.store.db, selectDevices(this.store.db, this.store.kind, org.id, filter), page);
  }

  async get(principal: Principal, orgIdOrSlug: string, deviceId: string): Promise<Device> {
    const row = await this.readable(principal, orgIdOrSlug, deviceId);
    return toDevice(row, (await tagsOf(this.store.db, [row.id])).get(row.id)!);
  }

  async create(actor: Actor, orgIdOrSlug: string, input: { name: string } & Omit<DeviceChanges, 'name'>): Promise<Device> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'device.manage', { orgId: org.id });
    return this.store.transaction(async (tx) => {
      const device = await insertDevice(tx, org.id, input);
      await recordAudit(tx, actor, { orgId: org.id, action: 'device.create', target: { type: 'device', id: device.id }, details: { name: device.name, externalId: device.externalId, tags: device.tags } });
      return device;
    });
  }

  /** The device a connection names itself as, for adapters (which authorize what follows themselves). */
  async findByExternalId(externalId: string): Promise<Device | undefined> {
    const row = await this.store.db.selectFrom('devices').selectAll().where('external_id', '=', externalId).executeTakeFirst();
    return row && toDevice(row, (await tagsOf(this.store.db, [row.id])).get(row.id)!);
  }

  /** Who an adapter acts as while it carries a connected device's messages. */
  principalFor(device: { id: string; orgId: string }): Principal {
    return { kind: 'device', deviceId: device.id, orgId: device.orgId, keyId: 'connection' };
  }

  /** Renames, retags, or changes the model, firmware or metadata of a device (operators). */
  async update(actor: Actor, orgIdOrSlug: string, deviceId: string, changes: DeviceChanges): Promise<Device> {
    const current = await this.readable(actor.principal, orgIdOrSlug, deviceId);
    authorize(actor.principal, 'device.update', { orgId: current.org_id, deviceId });
    // Which connection is this device decides what it may read and report: more than renaming it.
    if (changes.externalId !== undefined) authorize(actor.principal, 'device.manage', { orgId: current.org_id, deviceId });
    return this.store.transaction(async (tx) => {
      const row = (await findDevice(tx, current.org_id, deviceId))!;
      const values: Partial<DeviceRow> = { updated_at: nowIso() };
      if (changes.name !== undefined) values.name = changes.name;
      if (changes.externalId !== undefined) values.external_id = changes.externalId;
      if (changes.model !== undefined) values.model = changes.model;
      if (changes.firmware !== undefined) values.firmware = changes.firmware;
      if (changes.metadata !== undefined) values.metadata = serializeState(mergeState(JSON.parse(row.metadata) as StateDocument, changes.metadata), 'metadata');
      try {
        await tx.updateTable('devices').set(values).where('id', '=', deviceId).execute();
      } catch (error) {
        if (isUniqueViolation(error)) throw externalIdTaken(changes.externalId);
        throw error;
      }
      if (changes.tags !== undefined) {
        await tx.deleteFrom('device_tags').where('device_id', '=', deviceId).execute();
        const tags = [...new Set(changes.tags)];
        if (tags.length > 0) await tx.insertInto('device_tags').values(tags.map((tag) => ({ device_id: deviceId, tag }))).execute();
      }
      await recordAudit(tx, actor, { orgId: row.org_id, action: 'device.update', target: { type: 'device', id: deviceId }, details: { ...changes } });
      return toDevice({ ...row, ...values }, (await tagsOf(tx, [deviceId])).get(deviceId)!);
    });
  }

  /** Deletes the device; its API keys are revoked with it, its folder soft-deleted. */
  async delete(actor: Actor, orgIdOrSlug: string, deviceId: string): Promise<void> {
    const device = await this.readable(actor.principal, orgIdOrSlug, deviceId);
    authorize(actor.principal, 'device.manage', { orgId: device.org_id, deviceId });
    await this.store.transaction(async (tx) => {
      await deleteDeviceFolder(tx, device.id);
      await tx.deleteFrom('devices').where('id', '=', device.id).execute();
      await tx.updateTable('api_keys').set({ revoked_at: nowIso(), revoked_by: 'device.deleted' }).where('device_id', '=', device.id).where('revoked_at', 'is', null).execute();
      await recordAudit(tx, actor, { orgId: device.org_id, action: 'device.delete', target: { type: 'device', id: device.id }, details: { name: device.name } });
    });
  }

  async state(principal: Principal, orgIdOrSlug: string, deviceId: string): Promise<DeviceState> {
    return toState(await this.readable(principal, orgIdOrSlug, deviceId));
  }

  /** Merges a patch into the desired state (operators); the device is told while it is online. */
  async setDesired(actor: Actor, orgIdOrSlug: string, deviceId: string, patch: StateDocument): Promise<DeviceState> {
    const current = await this.readable(actor.principal, orgIdOrSlug, deviceId);
    authorize(actor.principal, 'device.control', { orgId: current.org_id, deviceId });
    return this.store.transaction(async (tx) => {
      const { row } = await this.writeState(tx, deviceId, 'desired', patch);
      await recordAudit(tx, actor, { orgId: current.org_id, action: 'device.desired', target: { type: 'device', id: deviceId }, details: { patch, version: row.desired_version } });
      return toState(row);
    });
  }

  /**
   * Merges a partial status report of the device itself into its reported state. Returns the new
   * state and only the fields that changed, which is what watchers are told.
   */
  async report(principal: Principal, orgIdOrSlug: string, deviceId: string, patch: StateDocument): Promise<{ state: DeviceState; changed: StateDocument | null }> {
    const current = await this.readable(principal, orgIdOrSlug, deviceId);
    authorize(principal, 'device.report', { orgId: current.org_id, deviceId });
    const { row, before } = await this.writeState(this.store.db, deviceId, 'reported', patch, { last_seen_at: nowIso() });
    return { state: toState(row), changed: changedFields(before, JSON.parse(row.reported) as StateDocument) ?? null };
  }

  /**
   * Read, merge, write if nobody wrote in between (the version says), else again: concurrent
   * reports on several nodes never lose each other's fields.
   */
  private async writeState(db: Db, deviceId: string, which: 'reported' | 'desired', patch: StateDocument, also: Partial<DeviceRow> = {}): Promise<{ row: DeviceRow; before: StateDocument }> {
    const version = which === 'reported' ? 'reported_version' : 'desired_version';
    for (let attempt = 0; attempt < stateWriteAttempts; attempt++) {
      const row = await db.selectFrom('devices').selectAll().where('id', '=', deviceId).executeTakeFirst();
      if (!row) throw notFound('Device');
      const before = JSON.parse(row[which]) as StateDocument;
      const values = { ...also, [which]: serializeState(mergeState(before, patch), `${which} state`), [version]: row[version] + 1 };
      const written = await db.updateTable('devices').set(values).where('id', '=', deviceId).where(version, '=', row[version]).executeTakeFirst();
      if (written.numUpdatedRows === 1n) return { row: { ...row, ...values }, before };
    }
    throw new FleetError('conflict', `The ${which} state of ${deviceId} changed too often to update; try again`);
  }

  /** The device row, if the principal may read it; others' devices are not found. */
  private async readable(principal: Principal, orgIdOrSlug: string, deviceId: string): Promise<DeviceRow> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(principal, 'device.read', { orgId: org.id, deviceId });
    const row = await findDevice(this.store.db, org.id, deviceId);
    if (!row) throw notFound('Device');
    return row;
  }
}
