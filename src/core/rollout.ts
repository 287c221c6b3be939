/**
 * The rules of a phased rollout, without I/O: how a deployment's devices are spread over its phases,
 * whether its maintenance window is open, and when a phase is done or has failed too often.
 */

/** A phase takes a number of devices, or a percentage of all of the deployment's devices. */
export type PhaseSize = { size: number } | { percent: number };
export type PhaseSpec = PhaseSize & { startAt?: string };

/** When devices may be updated, in UTC: on `days` (0 = Sunday; every day when absent) from `start` to `end`. */
export interface MaintenanceWindow {
  days?: number[];
  /** 'HH:MM'. An `end` before `start` spans midnight: the window belongs to the day it starts. */
  start: string;
  end: string;
}

/**
 * How many of `total` devices each phase takes, in order. A percentage is of all the devices, rounded
 * up; a phase takes at most what the phases before it left; what the last phase leaves joins it, so
 * that a deployment always covers every one of its devices.
 */
export function phaseSizes(total: number, phases: readonly PhaseSize[]): number[] {
  let left = total;
  const sizes = phases.map((phase) => {
    const wanted = 'size' in phase ? phase.size : Math.ceil((total * phase.percent) / 100);
    const taken = Math.min(wanted, left);
    left -= taken;
    return taken;
  });
  if (sizes.length > 0) sizes[sizes.length - 1]! += left;
  return sizes;
}

/** The phase of each of `total` devices (in the order they are given), from `phaseSizes`. */
export function phaseOfEach(total: number, phases: readonly PhaseSize[]): number[] {
  return phaseSizes(total, phases).flatMap((size, phase) => Array<number>(size).fill(phase));
}

const minutesOf = (time: string) => Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5));

/** Whether `at` falls inside the window; no window is always open. */
export function inMaintenanceWindow(window: MaintenanceWindow | null, at: Date): boolean {
  if (!window) return true;
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  const minute = at.getUTCHours() * 60 + at.getUTCMinutes();
  const day = at.getUTCDay();
  const opensOn = (weekday: number) => window.days === undefined || window.days.includes(weekday);
  if (start < end) return opensOn(day) && minute >= start && minute < end;
  // Across midnight: the evening part opens on its own day, the morning part belongs to the day before.
  return (opensOn(day) && minute >= start) || (opensOn((day + 6) % 7) && minute < end);
}

/** How a phase's devices stand. */
export interface PhaseCounts {
  /** Devices of the phase. */
  total: number;
  succeeded: number;
  failed: number;
}

/**
 * Whether a phase has failed too often: more than `thresholdPercent` of its devices failed. Once
 * every device finished that is the share of its finished devices; before, it pauses as soon as
 * the failures alone make the share certain, and not on the first early failure of a large phase.
 * Failures an operator accepted by resuming never pause the phase again on their own: only a
 * failure after them can.
 */
export function exceedsFailureThreshold(counts: PhaseCounts, thresholdPercent: number, acceptedFailures = 0): boolean {
  return counts.failed > acceptedFailures && counts.failed * 100 > thresholdPercent * counts.total;
}

/** A phase is done when every one of its devices succeeded or failed. */
export const phaseFinished = (counts: PhaseCounts): boolean => counts.succeeded + counts.failed >= counts.total;
