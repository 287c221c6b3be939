import type { Transaction } from 'kysely';
import { exceedsFailureThreshold, phaseFinished, type PhaseCounts, type PhaseSpec } from '../../core/rollout.ts';
import type { Database } from '../../store/schema.ts';
import { nowIso } from '../../store/page.ts';
import type { Store } from '../../store/store.ts';
import { recordUpdateEvent } from '../updates/update-events.ts';
import type { DeploymentRow } from './deployment.ts';

/**
 * The deployment's row, locked until the transaction ends: every step of a deployment (by the engine
 * on any node, or by an operator) reads and changes it under this lock, so that two nodes never take
 * the same step twice. SQLite runs one transaction at a time anyway.
 */
export async function lockDeployment(store: Store, tx: Transaction<Database>, deploymentId: string): Promise<DeploymentRow | undefined> {
  let query = tx.selectFrom('deployments').selectAll().where('id', '=', deploymentId);
  if (store.kind === 'postgres') query = query.forUpdate();
  return query.executeTakeFirst();
}

/** How the devices of one phase stand. */
export async function phaseCounts(tx: Transaction<Database>, deploymentId: string, phase: number): Promise<PhaseCounts & { scheduled: number }> {
  const rows = await tx
    .selectFrom('deployment_devices')
    .select((eb) => ['status', eb.fn.countAll<number | string>().as('n')])
    .where('deployment_id', '=', deploymentId)
    .where('phase', '=', phase)
    .groupBy('status')
    .execute();
  const count = (status: string) => Number(rows.find((row) => row.status === status)?.n ?? 0);
  return { total: rows.reduce((sum, row) => sum + Number(row.n), 0), succeeded: count('success'), failed: count('failure'), scheduled: count('scheduled') };
}

/**
 * Takes every step of the deployment that is due at `now`, under its lock: a scheduled deployment
 * whose start time came starts; a phase whose start time came (and whose previous phase is finished)
 * starts, its devices becoming pending; a phase whose failures pass the threshold pauses the
 * deployment; a finished phase hands over to the next; the last one finishing completes it.
 * Returns the devices whose phase started, to be told. Running it again changes nothing.
 */
export async function advanceDeployment(store: Store, deploymentId: string, now: Date): Promise<string[]> {
  return store.transaction(async (tx) => {
    const row = await lockDeployment(store, tx, deploymentId);
    if (!row) return [];
    const at = nowIso(now.getTime());
    const changes: Partial<DeploymentRow> = {};
    const event = (kind: string, details: Record<string, unknown> = {}) => recordUpdateEvent(tx, { orgId: row.org_id, deploymentId, kind, details });
    let status = row.status;
    if (status === 'scheduled' && isDue(row.start_at, now)) {
      status = changes.status = 'running';
      await event('deployment.started');
    }
    const started: string[] = [];
    const phases = JSON.parse(row.phases) as PhaseSpec[];
    let phase = row.current_phase;
    let accepted = row.accepted_failures;
    while (status === 'running') {
      const counts = await phaseCounts(tx, deploymentId, phase);
      if (counts.scheduled > 0) {
        if (!isDue(phases[phase]?.startAt ?? null, now)) break;
        const woken = await tx
          .updateTable('deployment_devices')
          .set({ status: 'pending', updated_at: at })
          .where('deployment_id', '=', deploymentId)
          .where('phase', '=', phase)
          .where('status', '=', 'scheduled')
          .returning('device_id')
          .execute();
        started.push(...woken.map((device) => device.device_id));
        await event('phase.started', { phase, devices: woken.length });
        break;
      }
      if (exceedsFailureThreshold(counts, row.failure_threshold, accepted)) {
        status = changes.status = 'paused';
        changes.paused_reason = `${counts.failed} of the ${counts.total} devices of phase ${phase + 1} failed, more than ${row.failure_threshold}%`;
        await event('deployment.paused', { phase, failed: counts.failed, devices: counts.total, failureThreshold: row.failure_threshold });
        break;
      }
      if (!phaseFinished(counts)) break;
      await event('phase.completed', { phase, succeeded: counts.succeeded, failed: counts.failed });
      if (phase + 1 >= phases.length) {
        status = changes.status = 'completed';
        changes.finished_at = at;
        await event('deployment.completed');
        break;
      }
      phase += 1;
      accepted = 0;
      changes.current_phase = phase;
      changes.accepted_failures = 0;
    }
    if (Object.keys(changes).length > 0 || started.length > 0) {
      await tx.updateTable('deployments').set({ ...changes, updated_at: at }).where('id', '=', deploymentId).execute();
    }
    return started;
  });
}

const isDue = (startAt: string | null, now: Date) => startAt === null || Date.parse(startAt) <= now.getTime();
