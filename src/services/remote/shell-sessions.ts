import type { Principal } from '../../core/access.ts';
import { authorize } from '../../core/access.ts';
import { conflict, forbidden, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { nowIso, paginate, type Page, type PageRequest } from '../../store/page.ts';
import type { Database } from '../../store/schema.ts';
import type { Store } from '../../store/store.ts';
import { actorRef, type Actor } from '../actor.ts';
import { recordAudit } from '../audit.ts';
import type { Organizations } from '../organizations.ts';
import { requireCapability, requireOnline, targetDevice, type DeviceRef } from './target-device.ts';

/** A remote shell on a device, as the audit view shows it. */
export interface ShellSession {
  id: string;
  orgId: string;
  deviceId: string;
  openedBy: { type: string; id: string };
  status: SessionRow['status'];
  /** The node the operator's socket was on. */
  node: string;
  createdAt: string;
  attachedAt: string | null;
  closedAt: string | null;
  closeReason: string | null;
  bytesToDevice: number;
  bytesFromDevice: number;
}

/** How a session ended, counted by the operator's side. */
export interface ShellSummary {
  reason: string;
  bytesToDevice: number;
  bytesFromDevice: number;
}

type SessionRow = Database['shell_sessions'];

const toSession = (row: SessionRow): ShellSession => ({
  id: row.id,
  orgId: row.org_id,
  deviceId: row.device_id,
  openedBy: { type: row.opened_by_type, id: row.opened_by_id },
  status: row.status,
  node: row.node,
  createdAt: row.created_at,
  attachedAt: row.attached_at,
  closedAt: row.closed_at,
  closeReason: row.close_reason,
  bytesToDevice: row.bytes_to_device,
  bytesFromDevice: row.bytes_from_device,
});

/**
 * Remote shell sessions: who opened which, when the device dialed back, when and why it ended, how
 * many bytes went each way. Opening and closing are audited (`device.shell_open`, `device.shell_close`).
 * The relay itself is the shell adapter's (src/adapters/shell).
 */
export class ShellSessions {
  readonly #store: Store;
  readonly #organizations: Organizations;

  constructor(options: { store: Store; organizations: Organizations }) {
    this.#store = options.store;
    this.#organizations = options.organizations;
  }

  /** Whether the principal may open a shell on the device now: admins only (403), a device offering `shell` (409) and connected (503). */
  async checkOpen(principal: Principal, orgIdOrSlug: string, deviceId: string): Promise<DeviceRef> {
    const device = await targetDevice(this.#store.db, this.#organizations, principal, orgIdOrSlug, deviceId, 'device.shell');
    requireCapability(device, 'shell');
    requireOnline(device);
    return { id: device.id, orgId: device.orgId };
  }

  /** Records a session waiting for the device to dial back, opened from `node`. */
  async open(actor: Actor, device: DeviceRef, node: string): Promise<ShellSession> {
    const who = actorRef(actor.principal);
    const row: SessionRow = {
      id: newId('shl'),
      org_id: device.orgId,
      device_id: device.id,
      opened_by_type: who.type,
      opened_by_id: who.id,
      status: 'waiting',
      node,
      created_at: nowIso(),
      attached_at: null,
      closed_at: null,
      close_reason: null,
      bytes_to_device: 0,
      bytes_from_device: 0,
    };
    await this.#store.transaction(async (tx) => {
      await tx.insertInto('shell_sessions').values(row).execute();
      await recordAudit(tx, actor, { orgId: device.orgId, action: 'device.shell_open', target: { type: 'device', id: device.id }, details: { sessionId: row.id } });
    });
    return toSession(row);
  }

  /**
   * The device dials back, once: a session of another organization, unknown or closed is not found;
   * another device's is forbidden; one with its device attached already is a conflict.
   */
  async attach(device: DeviceRef, sessionId: string): Promise<ShellSession> {
    const row = await this.#store.db.selectFrom('shell_sessions').selectAll().where('id', '=', sessionId).where('org_id', '=', device.orgId).executeTakeFirst();
    if (!row || row.status === 'closed') throw notFound('Shell session');
    if (row.device_id !== device.id) throw forbidden('A device attaches only to its own shell sessions');
    const attachedAt = nowIso();
    const updated = await this.#store.db.updateTable('shell_sessions').set({ status: 'attached', attached_at: attachedAt }).where('id', '=', row.id).where('status', '=', 'waiting').executeTakeFirst();
    if (updated.numUpdatedRows === 0n) throw conflict('The device is attached to this session already');
    return toSession({ ...row, status: 'attached', attached_at: attachedAt });
  }

  /** Ends the session once (later calls change nothing), audited as the operator who opened it. */
  async close(actor: Actor, sessionId: string, summary: ShellSummary): Promise<void> {
    const closedAt = nowIso();
    await this.#store.transaction(async (tx) => {
      const row = await tx.selectFrom('shell_sessions').selectAll().where('id', '=', sessionId).executeTakeFirst();
      if (!row) return;
      const updated = await tx
        .updateTable('shell_sessions')
        .set({ status: 'closed', closed_at: closedAt, close_reason: summary.reason, bytes_to_device: summary.bytesToDevice, bytes_from_device: summary.bytesFromDevice })
        .where('id', '=', sessionId)
        .where('status', '!=', 'closed')
        .executeTakeFirst();
      if (updated.numUpdatedRows === 0n) return;
      await recordAudit(tx, actor, {
        orgId: row.org_id,
        action: 'device.shell_close',
        target: { type: 'device', id: row.device_id },
        details: { sessionId, durationMs: Date.parse(closedAt) - Date.parse(row.created_at), attached: row.attached_at !== null, ...summary },
      });
    });
  }

  /** The sessions of the organization, oldest first, for the audit view (admins). */
  async list(principal: Principal, orgIdOrSlug: string, filter: { deviceId?: string }, page: PageRequest): Promise<Page<ShellSession>> {
    const org = await this.#organizations.resolve(orgIdOrSlug);
    authorize(principal, 'device.shell', { orgId: org.id });
    let query = this.#store.db.selectFrom('shell_sessions').selectAll().where('org_id', '=', org.id);
    if (filter.deviceId !== undefined) query = query.where('device_id', '=', filter.deviceId);
    const result = await paginate(query, 'id', page);
    return { items: result.items.map(toSession), nextCursor: result.nextCursor };
  }
}
