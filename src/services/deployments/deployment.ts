import type { MaintenanceWindow, PhaseSpec } from '../../core/rollout.ts';
import type { Database } from '../../store/schema.ts';

export type DeploymentRow = Database['deployments'];
export type DeploymentStatus = DeploymentRow['status'];
export type DeploymentDeviceRow = Database['deployment_devices'];
export type DeploymentDeviceStatus = DeploymentDeviceRow['status'];

/** A target version rolled out to a group's devices (fixed when it is created), phase after phase. */
export interface Deployment {
  id: string;
  orgId: string;
  groupId: string;
  name: string;
  targetVersion: string;
  status: DeploymentStatus;
  phases: PhaseSpec[];
  maintenanceWindow: MaintenanceWindow | null;
  /** Percent of a phase's devices that may fail before the deployment pauses itself (see exceedsFailureThreshold). */
  failureThreshold: number;
  /** Index of the phase being rolled out. */
  currentPhase: number;
  /** Why it is paused: by an operator, or the failures of a phase. */
  pausedReason: string | null;
  startAt: string | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export type StatusCounts = Partial<Record<DeploymentDeviceStatus, number>>;

/** How a deployment's devices stand, in all and per phase. */
export interface DeploymentProgress {
  devices: number;
  byStatus: StatusCounts;
  phases: Array<{ phase: number; devices: number; byStatus: StatusCounts }>;
}

/** One device of a deployment. */
export interface DeploymentDevice {
  deviceId: string;
  phase: number;
  status: DeploymentDeviceStatus;
  /** The package it was offered last. */
  packageId: string | null;
  progress: number | null;
  reason: string | null;
  updatedAt: string;
  finishedAt: string | null;
}

/** What an operator asks for. */
export interface DeploymentInput {
  name?: string;
  groupId: string;
  targetVersion: string;
  /** In order; the devices the last one leaves join it. Default: one phase of every device. */
  phases?: PhaseSpec[];
  maintenanceWindow?: MaintenanceWindow | null;
  /** Percent; default 20. */
  failureThreshold?: number;
  /** When the first phase may start; now when absent. */
  startAt?: string;
}

export const defaultFailureThreshold = 20;
export const defaultPhases: PhaseSpec[] = [{ percent: 100 }];

export const toDeployment = (row: DeploymentRow): Deployment => ({
  id: row.id,
  orgId: row.org_id,
  groupId: row.group_id,
  name: row.name,
  targetVersion: row.target_version,
  status: row.status,
  phases: JSON.parse(row.phases) as PhaseSpec[],
  maintenanceWindow: row.maintenance_window === null ? null : (JSON.parse(row.maintenance_window) as MaintenanceWindow),
  failureThreshold: row.failure_threshold,
  currentPhase: row.current_phase,
  pausedReason: row.paused_reason,
  startAt: row.start_at,
  createdBy: row.created_by,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  finishedAt: row.finished_at,
});

export const toDeploymentDevice = (row: DeploymentDeviceRow): DeploymentDevice => ({
  deviceId: row.device_id,
  phase: row.phase,
  status: row.status,
  packageId: row.package_id,
  progress: row.progress,
  reason: row.reason,
  updatedAt: row.updated_at,
  finishedAt: row.finished_at,
});
