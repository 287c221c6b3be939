import { newId } from '../core/ids.ts';
import type { Db } from '../store/store.ts';
import { nowIso, paginate, type Page, type PageRequest } from '../store/page.ts';
import { actorRef, type Actor } from './actor.ts';

export interface AuditEvent {
  id: string;
  orgId: string | null;
  actor: { type: string; id: string };
  action: string;
  target: { type: string; id: string };
  details: Record<string, unknown> | null;
  ip: string | null;
  requestId: string | null;
  at: string;
}

export interface AuditChange {
  orgId: string | null;
  /** `<object>.<verb>`, such as `member.add` or `api_key.revoke`. */
  action: string;
  target: { type: string; id: string };
  details?: Record<string, unknown>;
}

/** Records a management change; call it inside the change's own transaction so both land or neither. */
export async function recordAudit(db: Db, actor: Actor, change: AuditChange): Promise<void> {
  const who = actorRef(actor.principal);
  await db
    .insertInto('audit_events')
    .values({
      id: newId('aud'),
      org_id: change.orgId,
      actor_type: who.type,
      actor_id: who.id,
      action: change.action,
      target_type: change.target.type,
      target_id: change.target.id,
      details: change.details ? JSON.stringify(change.details) : null,
      ip: actor.ip ?? null,
      request_id: actor.requestId ?? null,
      at: nowIso(),
    })
    .execute();
}

export interface AuditFilter {
  /** Undefined lists every organization's events and the system's own (system admins only). */
  orgId?: string;
  action?: string;
  actorId?: string;
  targetType?: string;
  targetId?: string;
  since?: string;
  until?: string;
}

export async function listAudit(db: Db, filter: AuditFilter, page: PageRequest): Promise<Page<AuditEvent>> {
  let query = db.selectFrom('audit_events').selectAll();
  if (filter.orgId !== undefined) query = query.where('org_id', '=', filter.orgId);
  if (filter.action) query = query.where('action', '=', filter.action);
  if (filter.actorId) query = query.where('actor_id', '=', filter.actorId);
  if (filter.targetType) query = query.where('target_type', '=', filter.targetType);
  if (filter.targetId) query = query.where('target_id', '=', filter.targetId);
  if (filter.since) query = query.where('at', '>=', new Date(filter.since).toISOString());
  if (filter.until) query = query.where('at', '<', new Date(filter.until).toISOString());
  const result = await paginate(query, 'id', page);
  return {
    nextCursor: result.nextCursor,
    items: result.items.map((row) => ({
      id: row.id,
      orgId: row.org_id,
      actor: { type: row.actor_type, id: row.actor_id },
      action: row.action,
      target: { type: row.target_type, id: row.target_id },
      details: row.details ? (JSON.parse(row.details) as Record<string, unknown>) : null,
      ip: row.ip,
      requestId: row.request_id,
      at: row.at,
    })),
  };
}
