import { type Expression, type ExpressionBuilder, type SqlBool } from 'kysely';
import { authorize, type Principal } from '../core/access.ts';
import { badRequest, conflict, FleetError, notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Database } from '../store/schema.ts';
import { isUniqueViolation, type Db, type Store } from '../store/store.ts';
import { contains, nowIso, paginate, type Page, type PageRequest } from '../store/page.ts';
import type { Actor } from './actor.ts';
import { recordAudit } from './audit.ts';
import { deviceMatches, normalizeFilter, type DeviceFilter } from './device-query.ts';
import { pageOfDevices, type Device } from './devices.ts';
import type { Organizations } from './organizations.ts';
import type { UpdateNotices } from './updates/notices.ts';

/**
 * A named set of an organization's devices. A static group lists its members; a dynamic group has a
 * saved filter instead, and its members are whichever devices match it when asked.
 */
export interface DeviceGroup {
  id: string;
  orgId: string;
  name: string;
  description: string;
  /** `dynamic` exactly when the group has a filter. */
  kind: 'static' | 'dynamic';
  filter: DeviceFilter | null;
  /** Of the groups a device is in, the one with the highest priority decides for it (see effectiveGroupOf). */
  priority: number;
  /** What its devices update to: nothing, or exactly `targetVersion` (RDFM's policies). */
  updatePolicy: UpdatePolicy['policy'];
  targetVersion: string | null;
  /** Free string keys (RDFM's groups are nothing else: `rdfm.group.name`, `rdfm.group.description`). */
  metadata: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

/** A group's update policy, as RDFM has them: `no_update`, or `exact_match` with the version to run. */
export type UpdatePolicy = { policy: 'no_update' } | { policy: 'exact_match'; targetVersion: string };

export interface GroupInput {
  name: string;
  description?: string;
  priority?: number;
  /** A filter makes the group dynamic; without one it is static and starts empty. */
  filter?: DeviceFilter | null;
  /** Replaces the whole metadata on a change. */
  metadata?: Record<string, string>;
}

/**
 * Changes to a group. `filter` changes its kind too: a filter on a static group makes it dynamic
 * and drops its list of members; null on a dynamic group makes it static, with no members.
 */
export type GroupChanges = Partial<GroupInput>;

/** Most device ids one call adds or removes: a request stays one bounded transaction. */
export const maxMembersPerCall = 1000;
/** Most packages in a group's package set. */
export const maxGroupPackages = 1000;
/** Dynamic filters evaluated per query (each adds a column and a few parameters). */
const filtersPerQuery = 100;
/** Devices (or groups) named per query. */
const devicesPerQuery = 500;

type GroupRow = Database['device_groups'];

const toGroup = (row: GroupRow): DeviceGroup => ({
  id: row.id,
  orgId: row.org_id,
  name: row.name,
  description: row.description,
  kind: row.filter === null ? 'static' : 'dynamic',
  filter: row.filter === null ? null : (JSON.parse(row.filter) as DeviceFilter),
  priority: row.priority,
  updatePolicy: row.update_policy,
  targetVersion: row.target_version,
  metadata: JSON.parse(row.metadata) as Record<string, string>,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const serializeFilter = (filter: DeviceFilter | null | undefined) => (filter ? JSON.stringify(normalizeFilter(filter)) : null);

function distinctIds(deviceIds: string[]): string[] {
  const ids = [...new Set(deviceIds)];
  if (ids.length === 0) throw badRequest('Name at least one device');
  if (ids.length > maxMembersPerCall) throw badRequest(`At most ${maxMembersPerCall} devices per call`);
  return ids;
}

/** Adds the devices (all of the organization's, or not_found) not yet in the static group; returns how many. */
async function insertMembers(tx: Db, actor: Actor, orgId: string, groupId: string, ids: string[]): Promise<number> {
  const devices = await tx.selectFrom('devices').select('id').where('org_id', '=', orgId).where('id', 'in', ids).execute();
  const known = new Set(devices.map((d) => d.id));
  const unknown = ids.filter((id) => !known.has(id));
  if (unknown.length > 0) throw new FleetError('not_found', `${unknown.length} of the devices were not found`, { details: { deviceIds: unknown } });
  const members = await tx.selectFrom('device_group_members').select('device_id').where('group_id', '=', groupId).where('device_id', 'in', ids).execute();
  const present = new Set(members.map((m) => m.device_id));
  const added = ids.filter((id) => !present.has(id));
  if (added.length === 0) return 0;
  await tx.insertInto('device_group_members').values(added.map((device_id) => ({ group_id: groupId, device_id }))).execute();
  await tx.updateTable('device_groups').set({ updated_at: nowIso() }).where('id', '=', groupId).execute();
  await recordAudit(tx, actor, { orgId, action: 'group.add_members', target: { type: 'group', id: groupId }, details: { deviceIds: added } });
  return added.length;
}

/** Removes members of a static group (the caller knows they are). */
async function deleteMembers(tx: Db, actor: Actor, orgId: string, groupId: string, ids: string[]): Promise<void> {
  await tx.deleteFrom('device_group_members').where('group_id', '=', groupId).where('device_id', 'in', ids).execute();
  await tx.updateTable('device_groups').set({ updated_at: nowIso() }).where('id', '=', groupId).execute();
  await recordAudit(tx, actor, { orgId, action: 'group.remove_members', target: { type: 'group', id: groupId }, details: { deviceIds: ids } });
}

export class Groups {
  constructor(
    private readonly store: Store,
    private readonly organizations: Organizations,
    /** Who tells devices that their update policy or package set changed; without it nobody is told. */
    private readonly notices?: UpdateNotices,
  ) {}

  async list(principal: Principal, orgIdOrSlug: string, filter: { q?: string }, page: PageRequest): Promise<Page<DeviceGroup>> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(principal, 'device.read', { orgId: org.id });
    let query = this.store.db.selectFrom('device_groups').selectAll().where('org_id', '=', org.id);
    if (filter.q) {
      const q = filter.q;
      query = query.where((eb) => eb.or([contains('name', q), contains('description', q)]));
    }
    const result = await paginate(query, 'id', page);
    return { items: result.items.map(toGroup), nextCursor: result.nextCursor };
  }

  async get(principal: Principal, orgIdOrSlug: string, groupId: string): Promise<DeviceGroup> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(principal, 'device.read', { orgId: org.id });
    return toGroup(await findGroup(this.store.db, org.id, groupId));
  }

  async create(actor: Actor, orgIdOrSlug: string, input: GroupInput): Promise<DeviceGroup> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'device.manage', { orgId: org.id });
    const now = nowIso();
    const row: GroupRow = {
      id: newId('grp'),
      org_id: org.id,
      name: input.name,
      description: input.description ?? '',
      filter: serializeFilter(input.filter),
      priority: input.priority ?? 0,
      update_policy: 'no_update',
      target_version: null,
      metadata: JSON.stringify(input.metadata ?? {}),
      created_at: now,
      updated_at: now,
    };
    const group = toGroup(row);
    await this.store.transaction(async (tx) => {
      await uniquelyNamed(row.name, tx.insertInto('device_groups').values(row).execute());
      await recordAudit(tx, actor, { orgId: org.id, action: 'group.create', target: { type: 'group', id: row.id }, details: { name: row.name, kind: group.kind, filter: group.filter, priority: row.priority } });
    });
    return group;
  }

  async update(actor: Actor, orgIdOrSlug: string, groupId: string, changes: GroupChanges): Promise<DeviceGroup> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'device.manage', { orgId: org.id });
    return this.store.transaction(async (tx) => {
      const values: Partial<GroupRow> = { updated_at: nowIso() };
      if (changes.name !== undefined) values.name = changes.name;
      if (changes.description !== undefined) values.description = changes.description;
      if (changes.priority !== undefined) values.priority = changes.priority;
      if (changes.filter !== undefined) values.filter = serializeFilter(changes.filter);
      if (changes.metadata !== undefined) values.metadata = JSON.stringify(changes.metadata);
      // The update comes first: it locks the row, so that members cannot be added while the kind changes.
      const updated = await uniquelyNamed(changes.name, tx.updateTable('device_groups').set(values).where('org_id', '=', org.id).where('id', '=', groupId).executeTakeFirst());
      if (updated.numUpdatedRows === 0n) throw notFound('Group');
      // Only a static group has a member list; a group that now has a filter keeps none.
      const dropped = values.filter ? await tx.deleteFrom('device_group_members').where('group_id', '=', groupId).executeTakeFirst() : undefined;
      const group = toGroup(await findGroup(tx, org.id, groupId));
      const details = { ...changes, ...(changes.filter !== undefined && { filter: group.filter }), ...(dropped?.numDeletedRows && { droppedMembers: Number(dropped.numDeletedRows) }) };
      await recordAudit(tx, actor, { orgId: org.id, action: 'group.update', target: { type: 'group', id: groupId }, details });
      return group;
    });
  }

  async delete(actor: Actor, orgIdOrSlug: string, groupId: string): Promise<void> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'device.manage', { orgId: org.id });
    await this.store.transaction(async (tx) => {
      const group = await findGroup(tx, org.id, groupId);
      await tx.deleteFrom('device_groups').where('id', '=', groupId).execute();
      await recordAudit(tx, actor, { orgId: org.id, action: 'group.delete', target: { type: 'group', id: groupId }, details: { name: group.name } });
    });
  }

  /**
   * Adds devices of the organization to a static group; those already in it stay. Every id must
   * be a device of the organization, or nothing is added.
   */
  async addMembers(actor: Actor, orgIdOrSlug: string, groupId: string, deviceIds: string[]): Promise<{ added: number }> {
    const ids = distinctIds(deviceIds);
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'device.manage', { orgId: org.id });
    return this.store.transaction(async (tx) => {
      await this.lockStatic(tx, org.id, groupId);
      return { added: await insertMembers(tx, actor, org.id, groupId, ids) };
    });
  }

  /**
   * Adds and removes devices of a static group in one transaction, as RDFM's group changes do:
   * every device to add must be one of the organization's (or nothing changes), a device to remove
   * that is not a member changes nothing.
   */
  async changeMembers(actor: Actor, orgIdOrSlug: string, groupId: string, change: { add: string[]; remove: string[] }): Promise<{ added: number; removed: number }> {
    const [add, remove] = [[...new Set(change.add)], [...new Set(change.remove)]];
    if (add.length + remove.length > maxMembersPerCall) throw badRequest(`At most ${maxMembersPerCall} devices per call`);
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'device.manage', { orgId: org.id });
    return this.store.transaction(async (tx) => {
      await this.lockStatic(tx, org.id, groupId);
      const added = add.length === 0 ? 0 : await insertMembers(tx, actor, org.id, groupId, add);
      const members = remove.length === 0 ? [] : await tx.selectFrom('device_group_members').select('device_id').where('group_id', '=', groupId).where('device_id', 'in', remove).execute();
      if (members.length > 0) await deleteMembers(tx, actor, org.id, groupId, members.map((m) => m.device_id));
      return { added, removed: members.length };
    });
  }

  /** Removes devices from a static group; every id must be a member, or nothing is removed. */
  async removeMembers(actor: Actor, orgIdOrSlug: string, groupId: string, deviceIds: string[]): Promise<{ removed: number }> {
    const ids = distinctIds(deviceIds);
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'device.manage', { orgId: org.id });
    return this.store.transaction(async (tx) => {
      await this.lockStatic(tx, org.id, groupId);
      const members = await tx.selectFrom('device_group_members').select('device_id').where('group_id', '=', groupId).where('device_id', 'in', ids).execute();
      const present = new Set(members.map((m) => m.device_id));
      const absent = ids.filter((id) => !present.has(id));
      if (absent.length > 0) throw new FleetError('not_found', `${absent.length} of the devices are not members of the group`, { details: { deviceIds: absent } });
      await deleteMembers(tx, actor, org.id, groupId, ids);
      return { removed: ids.length };
    });
  }

  /** Sets what the group's devices update to (admins); its devices online are told to check. */
  async setUpdatePolicy(actor: Actor, orgIdOrSlug: string, groupId: string, policy: UpdatePolicy): Promise<DeviceGroup> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'device.manage', { orgId: org.id });
    const targetVersion = policy.policy === 'exact_match' ? policy.targetVersion : null;
    const group = await this.store.transaction(async (tx) => {
      const updated = await tx
        .updateTable('device_groups')
        .set({ update_policy: policy.policy, target_version: targetVersion, updated_at: nowIso() })
        .where('org_id', '=', org.id)
        .where('id', '=', groupId)
        .executeTakeFirst();
      if (updated.numUpdatedRows === 0n) throw notFound('Group');
      await recordAudit(tx, actor, { orgId: org.id, action: 'group.update_policy', target: { type: 'group', id: groupId }, details: { policy: policy.policy, targetVersion } });
      return toGroup(await findGroup(tx, org.id, groupId));
    });
    await this.noticeMembers(org.id, groupId);
    return group;
  }

  /** The ids of the packages the group's devices may be given; none means every package of the organization. */
  async packageIds(principal: Principal, orgIdOrSlug: string, groupId: string): Promise<string[]> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(principal, 'device.read', { orgId: org.id });
    await findGroup(this.store.db, org.id, groupId);
    return this.packageSetOf(groupId);
  }

  /**
   * Replaces the group's package set (admins; [] clears it). Every id must be a package of the
   * organization, or nothing changes (409, as RDFM). Its devices online are told to check.
   */
  async setPackages(actor: Actor, orgIdOrSlug: string, groupId: string, packageIds: string[]): Promise<string[]> {
    const ids = [...new Set(packageIds)];
    if (ids.length > maxGroupPackages) throw badRequest(`At most ${maxGroupPackages} packages per group`);
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'device.manage', { orgId: org.id });
    const set = await this.store.transaction(async (tx) => {
      await findGroup(tx, org.id, groupId);
      const known = ids.length === 0 ? [] : await tx.selectFrom('packages').select('id').where('org_id', '=', org.id).where('status', '=', 'ready').where('id', 'in', ids).execute();
      const knownIds = new Set(known.map((row) => row.id));
      const unknown = ids.filter((id) => !knownIds.has(id));
      if (unknown.length > 0) throw conflict(`${unknown.length} of the packages do not exist`, { packageIds: unknown });
      await tx.deleteFrom('group_packages').where('group_id', '=', groupId).execute();
      if (ids.length > 0) await tx.insertInto('group_packages').values(ids.map((package_id) => ({ group_id: groupId, package_id }))).execute();
      await tx.updateTable('device_groups').set({ updated_at: nowIso() }).where('id', '=', groupId).execute();
      await recordAudit(tx, actor, { orgId: org.id, action: 'group.set_packages', target: { type: 'group', id: groupId }, details: { packageIds: ids } });
      return this.packageSetOf(groupId, tx);
    });
    await this.noticeMembers(org.id, groupId);
    return set;
  }

  /** The group's package set, oldest package first: the order the update resolver breaks ties by (no authorization). */
  async packageSetOf(groupId: string, db: Db = this.store.db): Promise<string[]> {
    const rows = await db.selectFrom('group_packages').select('package_id').where('group_id', '=', groupId).orderBy('package_id').execute();
    return rows.map((row) => row.package_id);
  }

  /** After a change of what the group's devices update to: those online check now. */
  private async noticeMembers(orgId: string, groupId: string): Promise<void> {
    if (this.notices) this.notices.publish(await this.memberIds(orgId, groupId));
  }

  /** The group's devices, paginated; a dynamic group's are those its filter matches now. */
  async members(principal: Principal, orgIdOrSlug: string, groupId: string, page: PageRequest): Promise<Page<Device>> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(principal, 'device.read', { orgId: org.id });
    const group = await findGroup(this.store.db, org.id, groupId);
    return pageOfDevices(this.store.db, this.store.db.selectFrom('devices').selectAll('devices').where(this.membership(org.id, group)), page);
  }

  /** Device ids of a group, for CallMany (no principal: the caller authorized already). */
  async memberIds(orgId: string, groupId: string): Promise<string[]> {
    const group = await findGroup(this.store.db, orgId, groupId);
    const rows = await this.store.db.selectFrom('devices').select('devices.id').where(this.membership(orgId, group)).orderBy('devices.id').execute();
    return rows.map((row) => row.id);
  }

  /**
   * Group ids a device belongs to (static and dynamic), for event filters. Each dynamic filter is
   * asked of this one device by its id, never over the whole fleet.
   */
  async groupIdsOf(orgId: string, deviceId: string): Promise<string[]> {
    return (await this.groupIdsOfMany(orgId, [deviceId])).get(deviceId)!;
  }

  /** groupIdsOf for many devices at once (RDFM's device lists), a few queries per 500 devices; by device id. */
  async groupIdsOfMany(orgId: string, deviceIds: readonly string[]): Promise<Map<string, string[]>> {
    const db = this.store.db;
    const ids = new Map<string, string[]>(deviceIds.map((id) => [id, []]));
    const dynamic = deviceIds.length === 0 ? [] : await db.selectFrom('device_groups').selectAll().where('org_id', '=', orgId).where('filter', 'is not', null).execute();
    for (let from = 0; from < deviceIds.length; from += devicesPerQuery) {
      const slice = deviceIds.slice(from, from + devicesPerQuery);
      const listed = await db
        .selectFrom('device_group_members')
        .innerJoin('device_groups', 'device_groups.id', 'device_group_members.group_id')
        .select(['device_group_members.device_id', 'device_groups.id'])
        .where('device_groups.org_id', '=', orgId)
        .where('device_group_members.device_id', 'in', slice)
        .execute();
      for (const row of listed) ids.get(row.device_id)!.push(row.id);
      for (let start = 0; start < dynamic.length; start += filtersPerQuery) {
        const chunk = dynamic.slice(start, start + filtersPerQuery);
        // A row per device, a column per filter: whether the device matches it (true/false, or 1/0 on SQLite).
        const matches = await db
          .selectFrom('devices')
          .select((eb) => [eb.ref('devices.id').as('device_id'), ...chunk.map((group, i) => eb.and([this.membership(orgId, group)(eb)]).as(`g${i}`))])
          .where('devices.id', 'in', slice)
          .execute();
        for (const row of matches as Array<Record<string, unknown> & { device_id: string }>) {
          chunk.forEach((group, i) => {
            if (row[`g${i}`]) ids.get(row.device_id)!.push(group.id);
          });
        }
      }
    }
    for (const list of ids.values()) list.sort();
    return ids;
  }

  /**
   * The group that decides for a device (which OTA release it follows): of the groups it is in, the
   * highest priority; between equals, the older group. Null when it is in none.
   */
  async effectiveGroupOf(orgId: string, deviceId: string): Promise<DeviceGroup | null> {
    return (await this.effectiveGroupsOf(orgId, [deviceId])).get(deviceId)!;
  }

  /** effectiveGroupOf for many devices at once, by device id. */
  async effectiveGroupsOf(orgId: string, deviceIds: readonly string[]): Promise<Map<string, DeviceGroup | null>> {
    const memberships = await this.groupIdsOfMany(orgId, deviceIds);
    const groupIds = [...new Set([...memberships.values()].flat())];
    const groups = new Map<string, GroupRow>();
    for (let start = 0; start < groupIds.length; start += devicesPerQuery) {
      const rows = await this.store.db.selectFrom('device_groups').selectAll().where('org_id', '=', orgId).where('id', 'in', groupIds.slice(start, start + devicesPerQuery)).execute();
      for (const row of rows) groups.set(row.id, row);
    }
    // As SQL orders text: by code unit, not by locale.
    const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    const decides = (a: GroupRow, b: GroupRow) => b.priority - a.priority || byText(a.created_at, b.created_at) || byText(a.id, b.id);
    const effective = new Map<string, DeviceGroup | null>();
    for (const [deviceId, ids] of memberships) {
      const [first] = ids.flatMap((id) => groups.get(id) ?? []).sort(decides);
      effective.set(deviceId, first ? toGroup(first) : null);
    }
    return effective;
  }

  /** "The device is a member of the group", over `devices`. */
  private membership(orgId: string, group: GroupRow): (eb: ExpressionBuilder<Database, 'devices'>) => Expression<SqlBool> {
    if (group.filter !== null) return deviceMatches(this.store.kind, orgId, JSON.parse(group.filter) as DeviceFilter);
    return (eb) =>
      eb.and([
        eb('devices.org_id', '=', orgId),
        eb('devices.id', 'in', eb.selectFrom('device_group_members').select('device_group_members.device_id').where('device_group_members.group_id', '=', group.id)),
      ]);
  }

  /**
   * The static group's row, locked until the transaction ends so that its kind cannot change
   * meanwhile (SQLite runs one transaction at a time anyway).
   */
  private async lockStatic(tx: Db, orgId: string, groupId: string): Promise<void> {
    let query = tx.selectFrom('device_groups').select('filter').where('org_id', '=', orgId).where('id', '=', groupId);
    if (this.store.kind === 'postgres') query = query.forUpdate();
    const row = await query.executeTakeFirst();
    if (!row) throw notFound('Group');
    if (row.filter !== null) throw conflict('The group is dynamic: its members are the devices its filter matches');
  }
}

async function findGroup(db: Db, orgId: string, groupId: string): Promise<GroupRow> {
  const row = await db.selectFrom('device_groups').selectAll().where('org_id', '=', orgId).where('id', '=', groupId).executeTakeFirst();
  if (!row) throw notFound('Group');
  return row;
}

/** The write's result, or 409 when it would give a second group of the organization the name `name`. */
async function uniquelyNamed<T>(name: string | undefined, write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (error) {
    if (isUniqueViolation(error)) throw conflict(`A group named ${JSON.stringify(name)} exists already`);
    throw error;
  }
}
