import { monotonicIds } from '../../core/ids.ts';
import type { Database } from '../../store/schema.ts';
import { nowIso } from '../../store/page.ts';
import type { Db } from '../../store/store.ts';

/** One step of the update history: of a deployment (deviceId null), or of a device's update. */
export interface UpdateEvent {
  id: string;
  orgId: string;
  deploymentId: string | null;
  deviceId: string | null;
  /** `deployment.created|started|paused|resumed|cancelled|completed`, `phase.started|completed`, `device.offered|downloading|installing|success|failure`. */
  kind: string;
  details: Record<string, unknown>;
  at: string;
}

type UpdateEventRow = Database['update_events'];

// Increasing even within a millisecond: the history is read in id order.
const nextEventId = monotonicIds('uev');

export const toUpdateEvent = (row: UpdateEventRow): UpdateEvent => ({
  id: row.id,
  orgId: row.org_id,
  deploymentId: row.deployment_id,
  deviceId: row.device_id,
  kind: row.kind,
  details: JSON.parse(row.details) as Record<string, unknown>,
  at: row.at,
});

/** Appends to the history, in the transaction of the change it records. */
export async function recordUpdateEvent(
  db: Db,
  event: { orgId: string; deploymentId?: string | null; deviceId?: string | null; kind: string; details?: Record<string, unknown> },
): Promise<void> {
  await db
    .insertInto('update_events')
    .values({
      id: nextEventId(),
      org_id: event.orgId,
      deployment_id: event.deploymentId ?? null,
      device_id: event.deviceId ?? null,
      kind: event.kind,
      details: JSON.stringify(event.details ?? {}),
      at: nowIso(),
    })
    .execute();
}
