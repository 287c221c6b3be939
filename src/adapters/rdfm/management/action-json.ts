import type { ActionRun, DeviceAction, LoggedRun } from '../../../services/remote/actions.ts';

/** An action as RDFM's device advertised it (antmicro/rdfm:common/communication/src/request_models.py Action). */
export interface RdfmAction {
  action_id: string;
  action_name: string;
  description: string;
  command: string[];
  timeout: number;
}

/** One line of RDFM's action log (antmicro/rdfm:server/src/api/v2/devices.py). */
export interface RdfmActionLog {
  id: string;
  action: string;
  /** ISO 8601, as RDFM's action log gives it (not RFC 822). */
  created: string;
  /** `pending`, `sent`, `error`, or the exit code as text. */
  status: string;
  /** Where RDFM stored the output; fleetd keeps it with the run (fleetd's action-runs routes), so none. */
  download_url: null;
}

const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string');

/** RDFM's command and timeout come back from the details the device side kept; a device of another protocol has none. */
export function rdfmAction(action: DeviceAction & { details: Record<string, unknown> }): RdfmAction {
  const { command, timeout } = action.details;
  return {
    action_id: action.id,
    action_name: action.name,
    description: action.description,
    command: isStringArray(command) ? command : [],
    timeout: typeof timeout === 'number' && Number.isFinite(timeout) ? timeout : 0,
  };
}

/**
 * RDFM's log status of a run: its exit code once it has one; `error` for a run that ended without
 * one (refused, not taken, timed out, cancelled).
 */
export function rdfmRunStatus(run: Pick<ActionRun, 'status' | 'exitCode'>): string {
  if (run.exitCode !== null) return String(run.exitCode);
  if (run.status === 'pending' || run.status === 'sent') return run.status;
  return 'error';
}

export function rdfmActionLog(run: LoggedRun): RdfmActionLog {
  return { id: run.id, action: run.actionId, created: run.createdAt, status: rdfmRunStatus(run), download_url: null };
}
