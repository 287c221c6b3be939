/** The fields of the API's Deployment the CLI shows. */
export interface Deployment {
  id: string;
  name: string;
  groupId: string;
  targetVersion: string;
  status: 'scheduled' | 'running' | 'paused' | 'cancelled' | 'completed';
  phases: Array<{ size?: number; percent?: number; startAt?: string }>;
  maintenanceWindow: { days?: number[]; start: string; end: string } | null;
  failureThreshold: number;
  currentPhase: number;
  pausedReason: string | null;
  createdAt: string;
  finishedAt: string | null;
  /** Devices by status, in all and per phase: in a single deployment, not in lists. */
  progress?: {
    devices: number;
    byStatus: StatusCounts;
    phases: Array<{ phase: number; devices: number; byStatus: StatusCounts }>;
  };
}

/** Devices by their status in a deployment: scheduled, pending, downloading, installing, success, failure, cancelled. */
export type StatusCounts = Partial<Record<string, number>>;

/** A deployment in one of these states changes no more. */
export const finishedStatuses: ReadonlySet<string> = new Set(['completed', 'cancelled']);

/** Where devices stand, in the order they move through an update. */
const statusOrder = ['scheduled', 'pending', 'downloading', 'installing', 'success', 'failure', 'cancelled'];
const doneStatuses = new Set(['success', 'failure', 'cancelled']);
const barWidth = 30;
const dayNames = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

const total = (counts: StatusCounts) => Object.values(counts).reduce<number>((sum, n) => sum + (n ?? 0), 0);
const finished = (counts: StatusCounts) => Object.entries(counts).reduce((sum, [status, n]) => sum + (doneStatuses.has(status) ? (n ?? 0) : 0), 0);

/** `success 4, failure 1, pending 3`, in update order, statuses without devices left out. */
function describeCounts(counts: StatusCounts): string {
  const known = statusOrder.filter((status) => counts[status]);
  const others = Object.keys(counts).filter((status) => !statusOrder.includes(status) && counts[status]);
  return [...known, ...others].map((status) => `${status} ${counts[status]}`).join(', ') || 'no devices';
}

function progressBar(counts: StatusCounts): string {
  const all = total(counts);
  const fraction = all === 0 ? 0 : finished(counts) / all;
  const filled = Math.round(fraction * barWidth);
  return `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] ${(fraction * 100).toFixed(0)}% (${finished(counts)} of ${all} devices finished)`;
}

const devicesText = (n: number) => `${n} device${n === 1 ? '' : 's'}`;
const phaseSize = (phase: Deployment['phases'][number]) => (phase.percent !== undefined ? `${phase.percent}%` : devicesText(phase.size ?? 0));

function describeWindow(window: NonNullable<Deployment['maintenanceWindow']>): string {
  const days = window.days?.length ? ` on ${window.days.map((day) => dayNames[day] ?? String(day)).join(',')}` : '';
  return `${window.start}-${window.end} UTC${days}`;
}

/** A deployment for people: what it rolls out where, where it stands, and each phase's devices. */
export function renderDeployment(deployment: Deployment): string[] {
  const lines = [
    `Deployment ${deployment.id}${deployment.name ? ` (${deployment.name})` : ''}: ${deployment.status}` +
      (deployment.status === 'running' || deployment.status === 'paused' ? `, phase ${deployment.currentPhase + 1} of ${deployment.phases.length}` : ''),
    `Version ${deployment.targetVersion} to group ${deployment.groupId}; pauses above ${deployment.failureThreshold}% failures` +
      (deployment.maintenanceWindow ? `; window ${describeWindow(deployment.maintenanceWindow)}` : ''),
  ];
  if (deployment.pausedReason) lines.push(`Paused: ${deployment.pausedReason}`);
  const progress = deployment.progress;
  if (progress) lines.push(`${progressBar(progress.byStatus)}: ${describeCounts(progress.byStatus)}`);
  deployment.phases.forEach((phase, i) => {
    const counted = progress?.phases.find((p) => p.phase === i);
    const size = phase.percent !== undefined && counted ? `${phaseSize(phase)}: ${devicesText(counted.devices)}` : phaseSize(phase);
    const start = phase.startAt ? `, from ${phase.startAt}` : '';
    lines.push(`  phase ${i + 1} (${size}${start})${counted ? `: ${describeCounts(counted.byStatus)}` : ''}`);
  });
  return lines;
}
