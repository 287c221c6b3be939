import { authorize, type Principal } from '../core/access.ts';
import { notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Database } from '../store/schema.ts';
import type { Db, Store } from '../store/store.ts';
import { contains, nowIso, paginate, type Page, type PageRequest } from '../store/page.ts';
import type { Actor } from './actor.ts';
import { recordAudit } from './audit.ts';
import type { Organizations } from './organizations.ts';

export interface Device {
  id: string;
  orgId: string;
  name: string;
  createdAt: string;
  updatedAt: string;
}

const toDevice = (row: Database['devices']): Device => ({ id: row.id, orgId: row.org_id, name: row.name, createdAt: row.created_at, updatedAt: row.updated_at });

export async function findDevice(db: Db, orgId: string, deviceId: string): Promise<Device | undefined> {
  const row = await db.selectFrom('devices').selectAll().where('org_id', '=', orgId).where('id', '=', deviceId).executeTakeFirst();
  return row && toDevice(row);
}

/** The device registry: devices registered by an admin, each able to hold API keys of its own. */
export class Devices {
  constructor(
    private readonly store: Store,
    private readonly organizations: Organizations,
  ) {}

  async list(principal: Principal, orgIdOrSlug: string, filter: { q?: string }, page: PageRequest): Promise<Page<Device>> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(principal, 'device.read', { orgId: org.id });
    let query = this.store.db.selectFrom('devices').selectAll().where('org_id', '=', org.id);
    if (filter.q) query = query.where(contains('name', filter.q));
    const result = await paginate(query, 'id', page);
    return { items: result.items.map(toDevice), nextCursor: result.nextCursor };
  }

  async get(principal: Principal, orgIdOrSlug: string, deviceId: string): Promise<Device> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(principal, 'device.read', { orgId: org.id, deviceId });
    const device = await findDevice(this.store.db, org.id, deviceId);
    if (!device) throw notFound('Device');
    return device;
  }

  async create(actor: Actor, orgIdOrSlug: string, input: { name: string }): Promise<Device> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'device.manage', { orgId: org.id });
    const now = nowIso();
    const row = { id: newId('dev'), org_id: org.id, name: input.name, created_at: now, updated_at: now };
    await this.store.transaction(async (tx) => {
      await tx.insertInto('devices').values(row).execute();
      await recordAudit(tx, actor, { orgId: org.id, action: 'device.create', target: { type: 'device', id: row.id }, details: { name: row.name } });
    });
    return toDevice(row);
  }

  /** Deletes the device; its API keys are revoked with it. */
  async delete(actor: Actor, orgIdOrSlug: string, deviceId: string): Promise<void> {
    const device = await this.get(actor.principal, orgIdOrSlug, deviceId);
    authorize(actor.principal, 'device.manage', { orgId: device.orgId, deviceId });
    await this.store.transaction(async (tx) => {
      await tx.deleteFrom('devices').where('id', '=', device.id).execute();
      await tx.updateTable('api_keys').set({ revoked_at: nowIso(), revoked_by: 'device.deleted' }).where('device_id', '=', device.id).where('revoked_at', 'is', null).execute();
      await recordAudit(tx, actor, { orgId: device.orgId, action: 'device.delete', target: { type: 'device', id: device.id }, details: { name: device.name } });
    });
  }
}
