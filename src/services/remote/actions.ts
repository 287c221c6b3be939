import type { Config } from '../../config/keys.ts';
import type { Principal } from '../../core/access.ts';
import { conflict, FleetError, notFound } from '../../core/errors.ts';
import { monotonicIds } from '../../core/ids.ts';
import type { Bus } from '../../hub/bus.ts';
import type { Logger } from '../../log.ts';
import { nowIso, paginate, type Page, type PageRequest } from '../../store/page.ts';
import type { Database } from '../../store/schema.ts';
import type { Store } from '../../store/store.ts';
import { actorRef, type Actor } from '../actor.ts';
import { recordAudit } from '../audit.ts';
import type { Organizations } from '../organizations.ts';
import { requireCapability, targetDevice, type DeviceRef } from './target-device.ts';

/** An action a device offers, as it advertised it. */
export interface DeviceAction {
  id: string;
  name: string;
  description: string;
  updatedAt: string;
}

/** What a device says of one of its actions; `details` keeps the rest (RDFM: command, timeout). */
export interface AdvertisedAction {
  id: string;
  name: string;
  description?: string;
  details?: Record<string, unknown>;
}

export type ActionRunStatus = Database['action_runs']['status'];

/** One request to run an action, from queued to its result. */
export interface ActionRun {
  id: string;
  deviceId: string;
  actionId: string;
  status: ActionRunStatus;
  exitCode: number | null;
  /** What the action wrote, base64. */
  output: string | null;
  error: string | null;
  requestedBy: { type: string; id: string };
  createdAt: string;
  sentAt: string | null;
  finishedAt: string | null;
}

/** Published with `{deviceId}` when runs wait for a device: the node holding it sends them (src/hub/action-dispatch.ts). */
export const actionsQueuedSubject = 'fleetd.actions.queued';

/**
 * Published (payload null) when a run ends with a result, a failure or a cancellation, for whoever
 * waits for it on any node (awaitRun). Timeouts are not announced: waiters read the run again anyway.
 */
const runEndedSubject = (runId: string) => `fleetd.actions.ended.${runId}`;

/** The statuses a run ends in. */
export const endedRunStatuses: readonly ActionRunStatus[] = ['succeeded', 'failed', 'timeout', 'cancelled'];

/** A run as the action log lists it: without its output, which may be a MiB a run. */
export type LoggedRun = Omit<ActionRun, 'output'>;

/** Most runs the action log of one device lists: the newest. */
export const maxLoggedRuns = 10_000;
/** How often a waiter reads the run again, from the first pause to the longest. */
const firstPollMs = 500;
const maxPollMs = 10_000;

type RunRow = Database['action_runs'];

const toAction = (row: Database['device_actions']): DeviceAction => ({ id: row.action_id, name: row.name, description: row.description, updatedAt: row.updated_at });

const toLoggedRun = (row: Omit<RunRow, 'output' | 'org_id'>): LoggedRun => ({
  id: row.id,
  deviceId: row.device_id,
  actionId: row.action_id,
  status: row.status,
  exitCode: row.exit_code,
  error: row.error,
  requestedBy: { type: row.requested_by_type, id: row.requested_by_id },
  createdAt: row.created_at,
  sentAt: row.sent_at,
  finishedAt: row.finished_at,
});

const toRun = (row: RunRow): ActionRun => ({ ...toLoggedRun(row), output: row.output === null ? null : Buffer.from(row.output).toString('base64') });

/** Longest pause between two sweeps for runs whose result is overdue. */
const maxSweepIntervalMs = 30_000;

/**
 * Actions devices advertise and the runs operators ask for. A run is queued (`pending`) and
 * announced on the bus; whichever node holds the device sends it (`sent`), in the order runs were
 * queued, and the device reports its result later (`succeeded` on exit 0, else `failed`). A sent run
 * without a result within `actionTimeout` becomes `timeout`; a pending one may be `cancelled`.
 *
 * The methods under "dispatch" take no principal: adapters call them for a device they hold (the
 * native device link, RDFM's action_exec frames), having established who the device is.
 */
export class Actions {
  readonly #store: Store;
  readonly #organizations: Organizations;
  readonly #bus: Bus;
  readonly #config: Config;
  readonly #logger: Logger;
  /** Ids increase strictly on this node, so that runs queued in one millisecond keep their order. */
  readonly #nextRunId = monotonicIds('run');
  #sweeper: NodeJS.Timeout | undefined;
  #sweeping: Promise<unknown> = Promise.resolve();

  constructor(options: { store: Store; organizations: Organizations; bus: Bus; config: Config; logger: Logger }) {
    this.#store = options.store;
    this.#organizations = options.organizations;
    this.#bus = options.bus;
    this.#config = options.config;
    this.#logger = options.logger;
  }

  /** Starts the sweep of overdue runs; every node runs it, each run times out once (a conditional update). */
  start(): void {
    const intervalMs = Math.min(this.#config.actionTimeout * 1000, maxSweepIntervalMs) / 2;
    this.#sweeper = setInterval(() => {
      this.#sweeping = this.sweepTimeouts().catch((error: unknown) => this.#logger.warn({ err: error }, 'action run timeout sweep failed'));
    }, intervalMs);
    this.#sweeper.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await this.#sweeping;
  }

  /** The device's actions, replaced as a whole by what it advertises now. */
  async advertise(device: DeviceRef, actions: AdvertisedAction[]): Promise<DeviceAction[]> {
    const updatedAt = nowIso();
    const rows = actions.map((action) => ({
      device_id: device.id,
      action_id: action.id,
      name: action.name,
      description: action.description ?? '',
      details: JSON.stringify(action.details ?? {}),
      updated_at: updatedAt,
    }));
    // Not store.transaction: no node caches anything of this, so there is nothing to invalidate.
    await this.#store.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('device_actions').where('device_id', '=', device.id).execute();
      if (rows.length > 0) await tx.insertInto('device_actions').values(rows).execute();
    });
    return rows.map(toAction);
  }

  async list(principal: Principal, orgIdOrSlug: string, deviceId: string): Promise<DeviceAction[]> {
    const device = await targetDevice(this.#store.db, this.#organizations, principal, orgIdOrSlug, deviceId, 'device.read');
    const rows = await this.#store.db.selectFrom('device_actions').selectAll().where('device_id', '=', device.id).orderBy('action_id').execute();
    return rows.map(toAction);
  }

  /** The device's actions with the details it advertised them with (RDFM: command, timeout). */
  async listAdvertised(principal: Principal, orgIdOrSlug: string, deviceId: string): Promise<(DeviceAction & { details: Record<string, unknown> })[]> {
    const device = await targetDevice(this.#store.db, this.#organizations, principal, orgIdOrSlug, deviceId, 'device.read');
    const rows = await this.#store.db.selectFrom('device_actions').selectAll().where('device_id', '=', device.id).orderBy('action_id').execute();
    return rows.map((row) => ({ ...toAction(row), details: JSON.parse(row.details) as Record<string, unknown> }));
  }

  /**
   * Queues a run (202 for the caller: the result comes later). Refused when the device does not run
   * actions (409), does not offer this one (404), or already has actionQueueSize runs waiting (429).
   */
  async run(actor: Actor, orgIdOrSlug: string, deviceId: string, actionId: string): Promise<ActionRun> {
    const device = await targetDevice(this.#store.db, this.#organizations, actor.principal, orgIdOrSlug, deviceId, 'device.control');
    requireCapability(device, 'action');
    const offered = await this.#store.db.selectFrom('device_actions').select('action_id').where('device_id', '=', device.id).where('action_id', '=', actionId).executeTakeFirst();
    if (!offered) throw notFound('Action');
    const waiting = await this.#store.db
      .selectFrom('action_runs')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('device_id', '=', device.id)
      .where('status', '=', 'pending')
      .executeTakeFirstOrThrow();
    if (Number(waiting.count) >= this.#config.actionQueueSize) {
      throw new FleetError('rate_limited', `The device has ${this.#config.actionQueueSize} action runs waiting already`, { retryAfter: 60 });
    }
    const who = actorRef(actor.principal);
    const row: RunRow = {
      id: this.#nextRunId(),
      org_id: device.orgId,
      device_id: device.id,
      action_id: actionId,
      status: 'pending',
      exit_code: null,
      output: null,
      error: null,
      requested_by_type: who.type,
      requested_by_id: who.id,
      created_at: nowIso(),
      sent_at: null,
      finished_at: null,
    };
    await this.#store.transaction(async (tx) => {
      await tx.insertInto('action_runs').values(row).execute();
      await recordAudit(tx, actor, { orgId: device.orgId, action: 'action.run', target: { type: 'device', id: device.id }, details: { runId: row.id, actionId } });
    });
    this.#announce(device.id);
    return toRun(row);
  }

  async listRuns(principal: Principal, orgIdOrSlug: string, deviceId: string, page: PageRequest): Promise<Page<ActionRun>> {
    const device = await targetDevice(this.#store.db, this.#organizations, principal, orgIdOrSlug, deviceId, 'device.read');
    const result = await paginate(this.#store.db.selectFrom('action_runs').selectAll().where('device_id', '=', device.id), 'id', page);
    return { items: result.items.map(toRun), nextCursor: result.nextCursor };
  }

  async getRun(principal: Principal, orgIdOrSlug: string, deviceId: string, runId: string): Promise<ActionRun> {
    const device = await targetDevice(this.#store.db, this.#organizations, principal, orgIdOrSlug, deviceId, 'device.read');
    return toRun(await this.#runOf(device.id, runId));
  }

  /** Takes back a run that was not sent yet; one that was (or is finished) cannot be (409). */
  async cancel(actor: Actor, orgIdOrSlug: string, deviceId: string, runId: string): Promise<ActionRun> {
    const device = await targetDevice(this.#store.db, this.#organizations, actor.principal, orgIdOrSlug, deviceId, 'device.control');
    await this.#runOf(device.id, runId);
    const cancelled = await this.#store.transaction(async (tx) => {
      const updated = await tx
        .updateTable('action_runs')
        .set({ status: 'cancelled', finished_at: nowIso() })
        .where('id', '=', runId)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      if (updated.numUpdatedRows === 0n) return false;
      await recordAudit(tx, actor, { orgId: device.orgId, action: 'action.cancel', target: { type: 'device', id: device.id }, details: { runId } });
      return true;
    });
    const run = await this.#runOf(device.id, runId);
    if (!cancelled) throw conflict(`The run is ${run.status}: only a pending run can be cancelled`, { status: run.status });
    this.#announceEnd(runId);
    return toRun(run);
  }

  /** The device's newest runs (at most maxLoggedRuns), oldest first, without their output. */
  async runLog(principal: Principal, orgIdOrSlug: string, deviceId: string): Promise<LoggedRun[]> {
    const device = await targetDevice(this.#store.db, this.#organizations, principal, orgIdOrSlug, deviceId, 'device.read');
    const rows = await this.#store.db
      .selectFrom('action_runs')
      .select(['id', 'device_id', 'action_id', 'status', 'exit_code', 'error', 'requested_by_type', 'requested_by_id', 'created_at', 'sent_at', 'finished_at'])
      .where('device_id', '=', device.id)
      .orderBy('id', 'desc')
      .limit(maxLoggedRuns)
      .execute();
    return rows.reverse().map(toLoggedRun);
  }

  /** Cancels every run waiting for the device; returns how many. */
  async cancelPending(actor: Actor, orgIdOrSlug: string, deviceId: string): Promise<number> {
    const device = await targetDevice(this.#store.db, this.#organizations, actor.principal, orgIdOrSlug, deviceId, 'device.control');
    const runIds = await this.#store.transaction(async (tx) => {
      const rows = await tx.updateTable('action_runs').set({ status: 'cancelled', finished_at: nowIso() }).where('device_id', '=', device.id).where('status', '=', 'pending').returning('id').execute();
      const ids = rows.map((row) => row.id);
      if (ids.length > 0) await recordAudit(tx, actor, { orgId: device.orgId, action: 'action.cancel', target: { type: 'device', id: device.id }, details: { runIds: ids } });
      return ids;
    });
    for (const runId of runIds) this.#announceEnd(runId);
    return runIds.length;
  }

  /**
   * Deletes runs from the device's log: the ended ones (`'ended'`), or those named, all of them or
   * none. A named run that is not the device's is not found; one sent and waiting for its result
   * cannot be deleted (409), as the device is about to report it.
   */
  async deleteRuns(actor: Actor, orgIdOrSlug: string, deviceId: string, which: 'ended' | readonly string[]): Promise<number> {
    const device = await targetDevice(this.#store.db, this.#organizations, actor.principal, orgIdOrSlug, deviceId, 'device.control');
    return await this.#store.transaction(async (tx) => {
      let runIds: string[];
      if (which === 'ended') {
        const rows = await tx.selectFrom('action_runs').select('id').where('device_id', '=', device.id).where('status', 'in', endedRunStatuses).execute();
        runIds = rows.map((row) => row.id);
      } else {
        runIds = [...new Set(which)];
        const rows = runIds.length === 0 ? [] : await tx.selectFrom('action_runs').select(['id', 'status']).where('device_id', '=', device.id).where('id', 'in', runIds).execute();
        if (rows.length !== runIds.length) throw notFound('Action run');
        const sent = rows.find((row) => row.status === 'sent');
        if (sent) throw conflict(`Run ${sent.id} is sent: it cannot be deleted before its result`, { runId: sent.id });
      }
      // A run sent since it was read stays: its result is on its way.
      for (let start = 0; start < runIds.length; start += 500) {
        await tx.deleteFrom('action_runs').where('device_id', '=', device.id).where('id', 'in', runIds.slice(start, start + 500)).where('status', '!=', 'sent').execute();
      }
      if (runIds.length > 0) await recordAudit(tx, actor, { orgId: device.orgId, action: 'action.delete_runs', target: { type: 'device', id: device.id }, details: { count: runIds.length } });
      return runIds.length;
    });
  }

  /**
   * The run once `done` says so of it, or as it is when `timeoutMs` passed or `signal` aborted. The
   * node that ends a run wakes its waiters over the bus; the run is also read again every few
   * seconds, as a bus message may be lost and timeouts are not announced. For a run the caller was
   * allowed to see (it queued it, or read it).
   */
  async awaitRun(run: { id: string; deviceId: string }, done: (run: ActionRun) => boolean, options: { timeoutMs: number; signal?: AbortSignal }): Promise<ActionRun> {
    const deadline = Date.now() + options.timeoutMs;
    let woken = false;
    let wake = () => {};
    const subscription = await this.#bus.subscribe(runEndedSubject(run.id), () => {
      woken = true;
      wake();
      return undefined;
    });
    try {
      for (let pause = firstPollMs; ; pause = Math.min(pause * 2, maxPollMs)) {
        woken = false;
        const current = toRun(await this.#runOf(run.deviceId, run.id));
        const left = deadline - Date.now();
        if (done(current) || left <= 0 || options.signal?.aborted) return current;
        if (woken) continue;
        await new Promise<void>((resolve) => {
          const finish = () => {
            clearTimeout(timer);
            options.signal?.removeEventListener('abort', finish);
            resolve();
          };
          const timer = setTimeout(finish, Math.min(pause, left));
          options.signal?.addEventListener('abort', finish, { once: true });
          wake = finish;
        });
      }
    } finally {
      subscription.unsubscribe();
    }
  }

  // Dispatch: for the adapter holding the device's connection.

  /** The oldest run waiting for the device. */
  async nextPending(deviceId: string): Promise<ActionRun | undefined> {
    const row = await this.#store.db.selectFrom('action_runs').selectAll().where('device_id', '=', deviceId).where('status', '=', 'pending').orderBy('id').limit(1).executeTakeFirst();
    return row && toRun(row);
  }

  /** Marks a pending run sent; false when it is not pending any more (cancelled, or another node sent it). */
  async markSent(runId: string): Promise<boolean> {
    const updated = await this.#store.db.updateTable('action_runs').set({ status: 'sent', sent_at: nowIso() }).where('id', '=', runId).where('status', '=', 'pending').executeTakeFirst();
    return updated.numUpdatedRows > 0n;
  }

  /** The device could not be reached with a sent run: it waits again, first in line. */
  async requeue(runId: string): Promise<void> {
    await this.#store.db.updateTable('action_runs').set({ status: 'pending', sent_at: null }).where('id', '=', runId).where('status', '=', 'sent').execute();
  }

  /** The device refused a sent run, or did not take it: it ends failed with the reason. */
  async fail(runId: string, error: string): Promise<void> {
    const updated = await this.#store.db.updateTable('action_runs').set({ status: 'failed', error, finished_at: nowIso() }).where('id', '=', runId).where('status', '=', 'sent').executeTakeFirst();
    if (updated.numUpdatedRows > 0n) this.#announceEnd(runId);
  }

  /**
   * The device's result of a sent run: exit code 0 succeeded, anything else failed. Another
   * device's run is not found; a run not waiting for its result (timed out, never sent) is a conflict.
   */
  async complete(device: DeviceRef, runId: string, result: { exitCode: number; output?: Buffer }): Promise<ActionRun> {
    await this.#runOf(device.id, runId);
    const updated = await this.#store.db
      .updateTable('action_runs')
      .set({ status: result.exitCode === 0 ? 'succeeded' : 'failed', exit_code: result.exitCode, output: result.output ?? null, finished_at: nowIso() })
      .where('id', '=', runId)
      .where('device_id', '=', device.id)
      .where('status', '=', 'sent')
      .executeTakeFirst();
    const run = await this.#runOf(device.id, runId);
    if (updated.numUpdatedRows === 0n) throw conflict(`The run is ${run.status}: it does not wait for a result`, { status: run.status });
    this.#announceEnd(runId);
    return toRun(run);
  }

  /** Sent runs without a result after actionTimeout become `timeout`; returns how many. */
  async sweepTimeouts(now = Date.now()): Promise<number> {
    const cutoff = nowIso(now - this.#config.actionTimeout * 1000);
    const updated = await this.#store.db
      .updateTable('action_runs')
      .set({ status: 'timeout', error: `no result within ${this.#config.actionTimeout} s`, finished_at: nowIso(now) })
      .where('status', '=', 'sent')
      .where('sent_at', '<', cutoff)
      .executeTakeFirst();
    return Number(updated.numUpdatedRows);
  }

  async #runOf(deviceId: string, runId: string): Promise<RunRow> {
    const row = await this.#store.db.selectFrom('action_runs').selectAll().where('id', '=', runId).where('device_id', '=', deviceId).executeTakeFirst();
    if (!row) throw notFound('Action run');
    return row;
  }

  #announceEnd(runId: string): void {
    try {
      this.#bus.publish(runEndedSubject(runId), null);
    } catch (error) {
      // Waiters read the run again within seconds.
      this.#logger.warn({ err: error, runId }, 'could not announce the end of an action run');
    }
  }

  #announce(deviceId: string): void {
    try {
      this.#bus.publish(actionsQueuedSubject, { deviceId });
    } catch (error) {
      // The run waits in the store: the device gets it when it next connects.
      this.#logger.warn({ err: error, deviceId }, 'could not announce a queued action run');
    }
  }
}
