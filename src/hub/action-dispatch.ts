import { FleetError } from '../core/errors.ts';
import { actionsQueuedSubject } from '../services/remote/actions.ts';
import type { BusSubscription } from './bus.ts';
import type { Hub } from './hub.ts';

export interface ActionDispatch {
  close(): void;
}

/** Whether a failed call means the device was not there to take it (rather than refusing it). */
const unreachable = (error: unknown) =>
  error instanceof FleetError && error.code === 'unavailable' && (error.details as { reason?: unknown } | undefined)?.reason === 'device_offline';

/**
 * Sends queued action runs (`Fleetd.RunAction {runId, actionId}`) to the devices linked on this
 * node: when one comes online here, and when a run is queued for one that is here. Each device's
 * runs go one at a time, oldest first; a run is marked sent before the call (compare-and-set, so a
 * device that moved to another node is not sent it twice), back to pending when the device was
 * gone, failed when the device refused it or did not answer.
 */
export async function startActionDispatch(hub: Hub): Promise<ActionDispatch> {
  const { actions } = hub.services;
  const logger = hub.logger.child({ component: 'action-dispatch' });
  /** Devices being served now; `again` when more runs were announced meanwhile. */
  const draining = new Map<string, { again: boolean }>();

  const sendPending = async (deviceId: string): Promise<void> => {
    for (;;) {
      if (!hub.links.isLocal(deviceId)) return;
      const run = await actions.nextPending(deviceId);
      if (!run) return;
      if (!(await actions.markSent(run.id))) continue;
      try {
        await hub.links.call(deviceId, 'Fleetd.RunAction', { runId: run.id, actionId: run.actionId });
      } catch (error) {
        if (unreachable(error)) {
          await actions.requeue(run.id);
          return;
        }
        await actions.fail(run.id, `the device did not take the run: ${error instanceof FleetError ? error.message : 'internal error'}`);
      }
    }
  };

  const dispatch = (deviceId: string): void => {
    const current = draining.get(deviceId);
    if (current) {
      current.again = true;
      return;
    }
    const state = { again: false };
    draining.set(deviceId, state);
    void (async () => {
      do {
        state.again = false;
        await sendPending(deviceId).catch((error: unknown) => logger.warn({ err: error, deviceId }, 'could not send queued action runs'));
      } while (state.again);
      draining.delete(deviceId);
    })();
  };

  const subscription: BusSubscription = await hub.bus.subscribe(actionsQueuedSubject, ({ payload }) => {
    const deviceId = (payload as { deviceId?: unknown } | null)?.deviceId;
    if (typeof deviceId === 'string' && hub.links.isLocal(deviceId)) dispatch(deviceId);
    return undefined;
  });
  // Published by the node that linked the device: this one, where its socket is.
  const stopListening = hub.events.onPublished((event) => {
    if (event.name === 'device.online' && event.deviceId !== null) dispatch(event.deviceId);
  });
  return {
    close() {
      subscription.unsubscribe();
      stopListening();
    },
  };
}
