import { conflict, FleetError } from '../../../core/errors.ts';
import type { Actor } from '../../../services/actor.ts';
import type { Device } from '../../../services/devices.ts';
import type { Services } from '../../../services/index.ts';
import { endedRunStatuses, type ActionRun } from '../../../services/remote/actions.ts';

/** How long a run may wait to be sent to a device that was online (RDFM waits as long for the device's action_exec_control). */
export const sendWithinMs = 30_000;
/** RDFM's longest wait for a result (EXECUTION_TOTAL_TIMEOUT, antmicro/rdfm:server/src/device_mgmt/action.py). */
export const rdfmResultWithinMs = 2 * 3600 * 1000;

/** What RDFM's exec route answers: the result, or 202 when the run waits for the device. */
export type ExecOutcome = { status: 200; body: { status_code: number; output: string } } | { status: 202; body: Record<string, never> };

/**
 * Runs an action as RDFM's `GET …/action/exec/<action_id>` does: queued (fleetd keeps it for an
 * offline device: 202), and for a connected device the request waits for the result, at most
 * `actionTimeout` (and RDFM's 2 h) after it was sent. A run the device did not take is a 502, one
 * without a result in time a 504, one cancelled meanwhile a 409; one still waiting to be sent after
 * 30 s (the device went away) stays queued: 202. `signal` stops the wait (the client left).
 */
export async function execAction(services: Services, resultWithinMs: number, actor: Actor, orgId: string, device: Device, actionId: string, signal: AbortSignal): Promise<ExecOutcome> {
  const run = await services.actions.run(actor, orgId, device.id, actionId);
  if (!device.online) return { status: 202, body: {} };
  const sendBy = Date.now() + sendWithinMs;
  const ended = (current: ActionRun) => endedRunStatuses.includes(current.status) || (current.status === 'pending' && Date.now() >= sendBy);
  const current = await services.actions.awaitRun(run, ended, { timeoutMs: sendWithinMs + resultWithinMs, signal });
  const seconds = Math.round(resultWithinMs / 1000);
  switch (current.status) {
    case 'pending':
      return { status: 202, body: {} };
    case 'sent':
    case 'timeout':
      throw new FleetError('device_timeout', `The device sent no result within ${seconds} s`);
    case 'cancelled':
      throw conflict('The run was cancelled before the device ran it');
    case 'succeeded':
    case 'failed':
      if (current.exitCode === null) throw new FleetError('device_error', current.error ?? 'The device did not run the action');
      return { status: 200, body: { status_code: current.exitCode, output: current.output ?? '' } };
  }
}
