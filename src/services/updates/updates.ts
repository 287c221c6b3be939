import { authorize, type Principal } from '../../core/access.ts';
import { badRequest, conflict, notFound } from '../../core/errors.ts';
import { inMaintenanceWindow, type MaintenanceWindow } from '../../core/rollout.ts';
import { rdfmVersionKey, resolveUpdate, type Facts } from '../../core/update-resolver.ts';
import type { EventStream } from '../../hub/events.ts';
import type { Logger } from '../../log.ts';
import type { Database } from '../../store/schema.ts';
import { nowIso } from '../../store/page.ts';
import type { Db, Store } from '../../store/store.ts';
import { findDevice } from '../devices.ts';
import type { DeviceGroup, Groups } from '../groups.ts';
import type { Organizations } from '../organizations.ts';
import type { Package } from '../packages/package.ts';
import type { Packages } from '../packages/packages.ts';
import type { NodeCache } from '../node-cache.ts';
import { recordUpdateEvent } from './update-events.ts';

/** The device as the caller authenticated it: plain values, so that any protocol adapter can ask. */
export interface UpdatingDevice {
  id: string;
  orgId: string;
}

/** What the device runs, as it says in its update check. */
export type UpdateFacts = Facts;

/** The package a device should install next, with a link it downloads it by without credentials. */
export interface UpdateOffer {
  packageId: string;
  /** When the package was uploaded (RDFM's update check shows it). */
  packageCreatedAt: string;
  version: string;
  size: number;
  sha256: string;
  signature: string | null;
  url: string;
  expiresAt: string;
  /** The deployment the update belongs to; null when the group's policy asked for it. */
  deploymentId: string | null;
}

export type UpdateStatus = Database['device_updates']['status'];

/** What a device says of the update it was offered. */
export interface UpdateReport {
  status: Exclude<UpdateStatus, 'pending'>;
  /** Percent, 0–100. */
  progress?: number;
  /** Why it failed. */
  reason?: string;
  /** The version it runs now, with `success`. */
  version?: string;
}

/** The update a device was last offered, and how far it got. */
export interface DeviceUpdate {
  deviceId: string;
  packageId: string;
  targetVersion: string;
  deploymentId: string | null;
  status: UpdateStatus;
  progress: number | null;
  reason: string | null;
  createdAt: string;
  updatedAt: string;
}

type DeviceUpdateRow = Database['device_updates'];

const toDeviceUpdate = (row: DeviceUpdateRow): DeviceUpdate => ({
  deviceId: row.device_id,
  packageId: row.package_id,
  targetVersion: row.target_version,
  deploymentId: row.deployment_id,
  status: row.status,
  progress: row.progress,
  reason: row.reason,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

/** Statuses of an update still on its way. */
const unfinishedStatuses = ['pending', 'downloading', 'installing'] as const;
const maxReasonLength = 1000;

/** What the update check needs of the packages service. */
type PackageCatalog = Pick<Packages, 'candidates' | 'byIds' | 'downloadLink'>;

/** Where a device's target version comes from: a deployment that holds it, or its group's policy. */
type Target = { version: string; deploymentId: string | null } | null;

/** What a check decided: the package to offer towards the target, or nothing. */
export type UpdateDecision = { pkg: Package; target: NonNullable<Target> } | null;

/**
 * The update check and the reports that follow it. The target is that of a running deployment whose
 * phase holding the device has started, while the deployment's maintenance window is open (closed:
 * nothing, the device waits for it); otherwise its effective group's policy. The packages are the
 * effective group's package set, or when it lists none every package of the device's type; RDFM's
 * resolver picks the one to install next.
 */
export class Updates {
  readonly #store: Store;
  readonly #events: Pick<EventStream, 'publish'> | undefined;
  readonly #logger: Logger | undefined;
  readonly #organizations: Organizations;
  readonly #groups: Groups;
  readonly #packages: PackageCatalog;
  readonly #decisions: NodeCache<UpdateDecision>;

  /**
   * `decisions` keeps what checks decided, per device and what it said of itself: devices poll, and
   * the same question should not cost a dozen queries each time. Any commit clears it (NodeCache), so
   * a change of policy, packages, membership or progress is seen at once.
   */
  constructor(options: {
    store: Store;
    organizations: Organizations;
    groups: Groups;
    packages: PackageCatalog;
    decisions: NodeCache<UpdateDecision>;
    /** Where each report becomes a `device.update` hub event, for whoever watches devices; without it nobody is told. */
    events?: Pick<EventStream, 'publish'>;
    logger?: Logger;
  }) {
    this.#store = options.store;
    this.#events = options.events;
    this.#logger = options.logger;
    this.#organizations = options.organizations;
    this.#groups = options.groups;
    this.#packages = options.packages;
    this.#decisions = options.decisions;
  }

  /**
   * The package the device should install next, or null (HTTP 204). An offer is recorded (the device's
   * update becomes pending, the history says so) unless it repeats the one the device works on.
   */
  async check(device: UpdatingDevice, facts: UpdateFacts, baseUrl: string, now = new Date()): Promise<UpdateOffer | null> {
    const key = `${device.id}\0${JSON.stringify(facts)}`;
    let decision = this.#decisions.recall(key, now.getTime());
    if (decision === undefined) {
      const generation = this.#decisions.generation;
      decision = await this.#decide(device, facts, now);
      if (decision && !(await offerRecorded(this.#store.db, device, decision))) {
        const { pkg, target } = decision;
        await this.#store.transaction((tx) => recordOffer(tx, device, pkg, target));
      } else {
        // A maintenance window opens and closes on the minute: a decision holds until the next one at most.
        this.#decisions.remember(key, decision, generation, Math.ceil((now.getTime() + 1) / 60_000) * 60_000);
      }
    }
    if (!decision) return null;
    const { pkg, target } = decision;
    const link = await this.#packages.downloadLink(pkg, baseUrl, { deviceId: device.id });
    return { packageId: pkg.id, packageCreatedAt: pkg.createdAt, version: pkg.version, size: pkg.size, sha256: pkg.sha256, signature: pkg.signature, url: link.url, expiresAt: link.expiresAt, deploymentId: target.deploymentId };
  }

  async #decide(device: UpdatingDevice, facts: UpdateFacts, now: Date): Promise<UpdateDecision> {
    if (!(await findDevice(this.#store.db, device.orgId, device.id))) throw notFound('Device');
    const group = await this.#groups.effectiveGroupOf(device.orgId, device.id);
    const target = await this.#targetOf(device, group, now);
    if (!target) return null;
    const candidates = await this.#candidatesOf(device.orgId, group, facts.deviceType);
    const index = resolveUpdate(facts, candidates, target.version);
    return index === null ? null : { pkg: candidates[index]!, target };
  }

  /**
   * The device's progress on the update it was offered: its update, its row of the deployment (until
   * that one is finished or cancelled), the history; on success with a version, the device's firmware.
   */
  async report(device: UpdatingDevice, report: UpdateReport): Promise<void> {
    if (report.progress !== undefined && !(Number.isInteger(report.progress) && report.progress >= 0 && report.progress <= 100)) throw badRequest('progress is a whole percent, 0 to 100');
    const reason = report.status === 'failure' ? (report.reason ?? '').slice(0, maxReasonLength) || null : null;
    const progress = report.progress ?? (report.status === 'success' ? 100 : null);
    const current = await this.#store.transaction(async (tx) => {
      const current = await tx.selectFrom('device_updates').selectAll().where('device_id', '=', device.id).where('org_id', '=', device.orgId).executeTakeFirst();
      if (!current) throw conflict('No update was offered to this device');
      const now = nowIso();
      await tx.updateTable('device_updates').set({ status: report.status, progress, reason, updated_at: now }).where('device_id', '=', device.id).execute();
      if (current.deployment_id) {
        const finished = report.status === 'success' || report.status === 'failure';
        await tx
          .updateTable('deployment_devices')
          .set({ status: report.status, progress, reason, updated_at: now, ...(finished && { finished_at: now }) })
          .where('deployment_id', '=', current.deployment_id)
          .where('device_id', '=', device.id)
          .where('status', 'in', unfinishedStatuses)
          .execute();
      }
      await recordUpdateEvent(tx, {
        orgId: device.orgId,
        deploymentId: current.deployment_id,
        deviceId: device.id,
        kind: `device.${report.status}`,
        details: { packageId: current.package_id, ...(progress !== null && { progress }), ...(reason !== null && { reason }), ...(report.version !== undefined && { version: report.version }) },
      });
      if (report.status === 'success' && report.version !== undefined) await recordVersion(tx, device, report.version);
      return current;
    });
    const data = { status: report.status, progress, reason, version: current.target_version, packageId: current.package_id, deploymentId: current.deployment_id };
    await this.#events?.publish({ name: 'device.update', orgId: device.orgId, deviceId: device.id, data }).catch((error: unknown) => {
      // The report is stored; watchers miss one event.
      this.#logger?.warn({ err: error, deviceId: device.id }, 'could not publish a device.update event');
    });
  }

  /** The update the device was last offered (members, or the device itself). */
  async statusOf(principal: Principal, orgIdOrSlug: string, deviceId: string): Promise<DeviceUpdate> {
    const org = await this.#organizations.resolve(orgIdOrSlug);
    authorize(principal, 'device.read', { orgId: org.id, deviceId });
    const row = await this.#store.db.selectFrom('device_updates').selectAll().where('org_id', '=', org.id).where('device_id', '=', deviceId).executeTakeFirst();
    if (!row) {
      if (!(await findDevice(this.#store.db, org.id, deviceId))) throw notFound('Device');
      throw notFound('Update of the device');
    }
    return toDeviceUpdate(row);
  }

  async #targetOf(device: UpdatingDevice, group: DeviceGroup | null, now: Date): Promise<Target> {
    const held = await this.#store.db
      .selectFrom('deployment_devices')
      .innerJoin('deployments', 'deployments.id', 'deployment_devices.deployment_id')
      .select(['deployments.id', 'deployments.target_version', 'deployments.maintenance_window'])
      .where('deployment_devices.device_id', '=', device.id)
      .where('deployments.org_id', '=', device.orgId)
      .where('deployments.status', '=', 'running')
      .where('deployment_devices.status', 'in', unfinishedStatuses)
      .orderBy('deployments.id', 'desc')
      .executeTakeFirst();
    if (held) {
      const window = held.maintenance_window === null ? null : (JSON.parse(held.maintenance_window) as MaintenanceWindow);
      return inMaintenanceWindow(window, now) ? { version: held.target_version, deploymentId: held.id } : null;
    }
    if (!group || group.updatePolicy !== 'exact_match' || group.targetVersion === null) return null;
    return { version: group.targetVersion, deploymentId: null };
  }

  async #candidatesOf(orgId: string, group: DeviceGroup | null, deviceType: string): Promise<Package[]> {
    const set = group ? await this.#groups.packageSetOf(group.id) : [];
    return set.length > 0 ? this.#packages.byIds(orgId, set) : this.#packages.candidates(orgId, deviceType);
  }
}

/** Whether the device works on this offer already: its update names the package and is unfinished. */
async function offerRecorded(db: Db, device: UpdatingDevice, { pkg, target }: NonNullable<UpdateDecision>): Promise<boolean> {
  const current = await db.selectFrom('device_updates').select(['package_id', 'deployment_id', 'status']).where('device_id', '=', device.id).executeTakeFirst();
  return current !== undefined && current.package_id === pkg.id && current.deployment_id === target.deploymentId && (unfinishedStatuses as readonly string[]).includes(current.status);
}

/** Makes the offer the device's update, unless it is the one the device already works on. */
async function recordOffer(tx: Db, device: UpdatingDevice, pkg: Package, target: NonNullable<Target>): Promise<void> {
  if (await offerRecorded(tx, device, { pkg, target })) return;
  const now = nowIso();
  const offer = { org_id: device.orgId, package_id: pkg.id, target_version: target.version, deployment_id: target.deploymentId, status: 'pending' as const, progress: null, reason: null, created_at: now, updated_at: now };
  await tx
    .insertInto('device_updates')
    .values({ device_id: device.id, ...offer })
    .onConflict((oc) => oc.column('device_id').doUpdateSet(offer))
    .execute();
  if (target.deploymentId) {
    await tx
      .updateTable('deployment_devices')
      .set({ package_id: pkg.id, updated_at: now })
      .where('deployment_id', '=', target.deploymentId)
      .where('device_id', '=', device.id)
      .execute();
  }
  await recordUpdateEvent(tx, { orgId: device.orgId, deploymentId: target.deploymentId, deviceId: device.id, kind: 'device.offered', details: { packageId: pkg.id, version: pkg.version, targetVersion: target.version } });
}

/** The device runs `version` now: its firmware, and RDFM's metadata key when it keeps one. */
export async function recordVersion(tx: Db, device: UpdatingDevice, version: string): Promise<void> {
  const row = await findDevice(tx, device.orgId, device.id);
  if (!row) return;
  const metadata = JSON.parse(row.metadata) as Record<string, unknown>;
  if (rdfmVersionKey in metadata) metadata[rdfmVersionKey] = version;
  await tx.updateTable('devices').set({ firmware: version, metadata: JSON.stringify(metadata), updated_at: nowIso() }).where('id', '=', device.id).execute();
}
