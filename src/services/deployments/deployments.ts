import type { Transaction } from 'kysely';
import { authorize, type Principal } from '../../core/access.ts';
import { badRequest, conflict, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { phaseOfEach, type MaintenanceWindow, type PhaseSpec } from '../../core/rollout.ts';
import type { Logger } from '../../log.ts';
import { nowIso, paginate, type Page, type PageRequest } from '../../store/page.ts';
import type { Database } from '../../store/schema.ts';
import type { Store } from '../../store/store.ts';
import { actorRef, type Actor } from '../actor.ts';
import { recordAudit } from '../audit.ts';
import type { Groups } from '../groups.ts';
import type { Organizations } from '../organizations.ts';
import type { UpdateNotices } from '../updates/notices.ts';
import { recordUpdateEvent, toUpdateEvent, type UpdateEvent } from '../updates/update-events.ts';
import {
  defaultFailureThreshold,
  defaultPhases,
  toDeployment,
  toDeploymentDevice,
  type Deployment,
  type DeploymentDevice,
  type DeploymentDeviceRow,
  type DeploymentDeviceStatus,
  type DeploymentInput,
  type DeploymentProgress,
  type DeploymentRow,
  type DeploymentStatus,
  type StatusCounts,
} from './deployment.ts';
import { advanceDeployment, lockDeployment, phaseCounts } from './engine.ts';

/** Device rows inserted per statement when a deployment is created. */
const insertChunk = 500;
const timePattern = /^([01]\d|2[0-3]):[0-5]\d$/;

/**
 * Deployments: a target version rolled out to a group's devices in phases, as hawkBit and AWS IoT
 * Jobs do it. The engine (`tick`) runs every `rolloutInterval` seconds on every node; each step is
 * taken under the deployment's row lock, so it is taken once however many nodes run it.
 */
export class Deployments {
  readonly #store: Store;
  readonly #organizations: Organizations;
  readonly #groups: Groups;
  readonly #notices: UpdateNotices;
  readonly #logger: Logger;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(options: { store: Store; organizations: Organizations; groups: Groups; notices: UpdateNotices; logger: Logger; rolloutInterval: number }) {
    this.#store = options.store;
    this.#organizations = options.organizations;
    this.#groups = options.groups;
    this.#notices = options.notices;
    this.#logger = options.logger;
    this.#intervalMs = options.rolloutInterval * 1000;
  }

  /** Runs the engine every `rolloutInterval` seconds; a pass still running when the next is due makes it skip. */
  start(): void {
    this.#timer = setInterval(() => {
      if (this.#running) return;
      this.#running = this.tick()
        .catch((error: unknown) => this.#logger.warn({ err: error }, 'deployment engine pass failed'))
        .finally(() => {
          this.#running = undefined;
        });
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** One pass of the engine over every deployment that is scheduled or running. */
  async tick(now = new Date()): Promise<void> {
    const due = await this.#store.db.selectFrom('deployments').select('id').where('status', 'in', ['scheduled', 'running']).orderBy('id').execute();
    for (const { id } of due) await this.#advance(id, now);
  }

  async create(actor: Actor, orgIdOrSlug: string, input: DeploymentInput): Promise<Deployment & { progress: DeploymentProgress }> {
    const org = await this.#organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'deployment.manage', { orgId: org.id });
    const phases = checkPhases(input.phases ?? defaultPhases);
    const window = checkWindow(input.maintenanceWindow ?? null);
    const startAt = input.startAt === undefined ? null : isoOf(input.startAt, 'startAt');
    const group = await this.#groups.get(actor.principal, org.id, input.groupId);
    const members = await this.#groups.memberIds(org.id, group.id);
    if (members.length === 0) throw conflict('The group has no devices');
    const now = nowIso();
    const row: DeploymentRow = {
      id: newId('dep'),
      org_id: org.id,
      group_id: group.id,
      name: input.name ?? `${input.targetVersion} to ${group.name}`,
      target_version: input.targetVersion,
      status: startAt !== null && startAt > now ? 'scheduled' : 'running',
      phases: JSON.stringify(phases),
      maintenance_window: window === null ? null : JSON.stringify(window),
      failure_threshold: input.failureThreshold ?? defaultFailureThreshold,
      current_phase: 0,
      accepted_failures: 0,
      paused_reason: null,
      start_at: startAt,
      created_by: actorRef(actor.principal).id,
      created_at: now,
      updated_at: now,
      finished_at: null,
    };
    const phaseOf = phaseOfEach(members.length, phases);
    await this.#store.transaction(async (tx) => {
      const release = await tx.selectFrom('packages').select('id').where('org_id', '=', org.id).where('version', '=', input.targetVersion).where('status', '=', 'ready').executeTakeFirst();
      if (!release) throw conflict(`No package of the organization has version ${JSON.stringify(input.targetVersion)}`);
      await tx.insertInto('deployments').values(row).execute();
      for (let start = 0; start < members.length; start += insertChunk) {
        const devices: DeploymentDeviceRow[] = members.slice(start, start + insertChunk).map((deviceId, i) => ({
          deployment_id: row.id,
          device_id: deviceId,
          phase: phaseOf[start + i]!,
          status: 'scheduled',
          package_id: null,
          progress: null,
          reason: null,
          updated_at: now,
          finished_at: null,
        }));
        await tx.insertInto('deployment_devices').values(devices).execute();
      }
      await recordUpdateEvent(tx, { orgId: org.id, deploymentId: row.id, kind: 'deployment.created', details: { groupId: group.id, targetVersion: row.target_version, devices: members.length } });
      await recordAudit(tx, actor, { orgId: org.id, action: 'deployment.create', target: { type: 'deployment', id: row.id }, details: { groupId: group.id, targetVersion: row.target_version, devices: members.length, phases } });
    });
    // The first phase starts now when it may, rather than at the next pass of the engine.
    await this.#advance(row.id, new Date());
    return this.#withProgress(org.id, row.id);
  }

  async list(principal: Principal, orgIdOrSlug: string, filter: { status?: DeploymentStatus; groupId?: string }, page: PageRequest): Promise<Page<Deployment>> {
    const org = await this.#organizations.resolve(orgIdOrSlug);
    authorize(principal, 'deployment.read', { orgId: org.id });
    let query = this.#store.db.selectFrom('deployments').selectAll().where('org_id', '=', org.id);
    if (filter.status) query = query.where('status', '=', filter.status);
    if (filter.groupId) query = query.where('group_id', '=', filter.groupId);
    const result = await paginate(query, 'id', page);
    return { items: result.items.map(toDeployment), nextCursor: result.nextCursor };
  }

  /** The deployment with how its devices stand, in all and per phase. */
  async get(principal: Principal, orgIdOrSlug: string, deploymentId: string): Promise<Deployment & { progress: DeploymentProgress }> {
    const org = await this.#organizations.resolve(orgIdOrSlug);
    authorize(principal, 'deployment.read', { orgId: org.id });
    return this.#withProgress(org.id, deploymentId);
  }

  async devices(principal: Principal, orgIdOrSlug: string, deploymentId: string, filter: { status?: DeploymentDeviceStatus }, page: PageRequest): Promise<Page<DeploymentDevice>> {
    const org = await this.#organizations.resolve(orgIdOrSlug);
    authorize(principal, 'deployment.read', { orgId: org.id });
    await this.#find(org.id, deploymentId);
    let query = this.#store.db.selectFrom('deployment_devices').selectAll().select('device_id as id').where('deployment_id', '=', deploymentId);
    if (filter.status) query = query.where('status', '=', filter.status);
    const result = await paginate(query, 'device_id', page);
    return { items: result.items.map(toDeploymentDevice), nextCursor: result.nextCursor };
  }

  /** Everything that happened to the deployment and its devices' updates, oldest first. */
  async events(principal: Principal, orgIdOrSlug: string, deploymentId: string, page: PageRequest): Promise<Page<UpdateEvent>> {
    const org = await this.#organizations.resolve(orgIdOrSlug);
    authorize(principal, 'deployment.read', { orgId: org.id });
    await this.#find(org.id, deploymentId);
    const result = await paginate(this.#store.db.selectFrom('update_events').selectAll().where('org_id', '=', org.id).where('deployment_id', '=', deploymentId), 'id', page);
    return { items: result.items.map(toUpdateEvent), nextCursor: result.nextCursor };
  }

  /** Stops handing out the update until resumed; devices already at it go on. */
  async pause(actor: Actor, orgIdOrSlug: string, deploymentId: string): Promise<Deployment & { progress: DeploymentProgress }> {
    return this.#change(actor, orgIdOrSlug, deploymentId, 'pause', ['scheduled', 'running'], async () => ({ status: 'paused', paused_reason: 'paused by an operator' }));
  }

  /** Goes on; the failures of the current phase so far are accepted and do not pause it again on their own. */
  async resume(actor: Actor, orgIdOrSlug: string, deploymentId: string): Promise<Deployment & { progress: DeploymentProgress }> {
    const resumed = await this.#change(actor, orgIdOrSlug, deploymentId, 'resume', ['paused'], async (row, tx) => ({
      status: row.start_at !== null && row.start_at > nowIso() ? 'scheduled' : 'running',
      paused_reason: null,
      accepted_failures: (await phaseCounts(tx, row.id, row.current_phase)).failed,
    }));
    await this.#advance(deploymentId, new Date());
    return this.#withProgress(resumed.orgId, deploymentId);
  }

  /** Ends it: devices whose update has not begun are cancelled; those downloading or installing still report. */
  async cancel(actor: Actor, orgIdOrSlug: string, deploymentId: string): Promise<Deployment & { progress: DeploymentProgress }> {
    return this.#change(actor, orgIdOrSlug, deploymentId, 'cancel', ['scheduled', 'running', 'paused'], async (row, tx, at) => {
      await tx
        .updateTable('deployment_devices')
        .set({ status: 'cancelled', updated_at: at, finished_at: at })
        .where('deployment_id', '=', row.id)
        .where('status', 'in', ['scheduled', 'pending'])
        .execute();
      return { status: 'cancelled', finished_at: at };
    });
  }

  /**
   * An operator's change of status, under the deployment's lock: allowed from the statuses `from`
   * (else 409), recorded in the history and the audit log.
   */
  async #change(
    actor: Actor,
    orgIdOrSlug: string,
    deploymentId: string,
    verb: 'pause' | 'resume' | 'cancel',
    from: DeploymentStatus[],
    changes: (row: DeploymentRow, tx: Transaction<Database>, at: string) => Promise<Partial<DeploymentRow>>,
  ): Promise<Deployment & { progress: DeploymentProgress }> {
    const org = await this.#organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'deployment.manage', { orgId: org.id });
    await this.#store.transaction(async (tx) => {
      const row = await lockDeployment(this.#store, tx, deploymentId);
      if (!row || row.org_id !== org.id) throw notFound('Deployment');
      if (!from.includes(row.status)) throw conflict(`The deployment is ${row.status}: it cannot ${verb}`);
      const at = nowIso();
      const values = await changes(row, tx, at);
      await tx.updateTable('deployments').set({ ...values, updated_at: at }).where('id', '=', deploymentId).execute();
      const kind = { pause: 'deployment.paused', resume: 'deployment.resumed', cancel: 'deployment.cancelled' }[verb];
      await recordUpdateEvent(tx, { orgId: org.id, deploymentId, kind, details: { by: actorRef(actor.principal) } });
      await recordAudit(tx, actor, { orgId: org.id, action: `deployment.${verb}`, target: { type: 'deployment', id: deploymentId } });
    });
    return this.#withProgress(org.id, deploymentId);
  }

  /** One deployment's due steps; a failure is logged, and the next pass tries again. */
  async #advance(deploymentId: string, now: Date): Promise<void> {
    try {
      this.#notices.publish(await advanceDeployment(this.#store, deploymentId, now));
    } catch (error) {
      this.#logger.warn({ err: error, deploymentId }, 'could not advance a deployment');
    }
  }

  async #find(orgId: string, deploymentId: string): Promise<DeploymentRow> {
    const row = await this.#store.db.selectFrom('deployments').selectAll().where('org_id', '=', orgId).where('id', '=', deploymentId).executeTakeFirst();
    if (!row) throw notFound('Deployment');
    return row;
  }

  async #withProgress(orgId: string, deploymentId: string): Promise<Deployment & { progress: DeploymentProgress }> {
    const row = await this.#find(orgId, deploymentId);
    const counts = await this.#store.db
      .selectFrom('deployment_devices')
      .select((eb) => ['phase', 'status', eb.fn.countAll<number | string>().as('n')])
      .where('deployment_id', '=', deploymentId)
      .groupBy(['phase', 'status'])
      .execute();
    const phases = (JSON.parse(row.phases) as PhaseSpec[]).map((_, phase) => ({ phase, devices: 0, byStatus: {} as StatusCounts }));
    const progress: DeploymentProgress = { devices: 0, byStatus: {}, phases };
    for (const { phase, status, n } of counts) {
      const count = Number(n);
      progress.devices += count;
      progress.byStatus[status] = (progress.byStatus[status] ?? 0) + count;
      const entry = phases[phase];
      if (!entry) continue;
      entry.devices += count;
      entry.byStatus[status] = (entry.byStatus[status] ?? 0) + count;
    }
    return { ...toDeployment(row), progress };
  }
}

function checkPhases(phases: PhaseSpec[]): PhaseSpec[] {
  if (phases.length === 0) throw badRequest('A deployment has at least one phase');
  return phases.map((phase, index) => {
    const sized = 'size' in phase ? Number.isInteger(phase.size) && phase.size >= 1 : phase.percent > 0 && phase.percent <= 100;
    if (!sized) throw badRequest(`Phase ${index + 1} takes a size of at least 1 or a percent above 0 up to 100`);
    const size = 'size' in phase ? { size: phase.size } : { percent: phase.percent };
    return phase.startAt === undefined ? size : { ...size, startAt: isoOf(phase.startAt, `phase ${index + 1} startAt`) };
  });
}

function checkWindow(window: MaintenanceWindow | null): MaintenanceWindow | null {
  if (window === null) return null;
  if (!timePattern.test(window.start) || !timePattern.test(window.end)) throw badRequest('A maintenance window runs from start to end, each HH:MM (UTC)');
  if (window.start === window.end) throw badRequest('A maintenance window ends at another time than it starts');
  if (window.days === undefined) return { start: window.start, end: window.end };
  const days = [...new Set(window.days)].sort((a, b) => a - b);
  if (days.length === 0 || days.some((day) => !Number.isInteger(day) || day < 0 || day > 6)) throw badRequest('Maintenance window days are 0 (Sunday) to 6');
  return { days, start: window.start, end: window.end };
}

function isoOf(text: string, what: string): string {
  const time = Date.parse(text);
  if (Number.isNaN(time)) throw badRequest(`${what} is not a date and time`);
  return nowIso(time);
}
