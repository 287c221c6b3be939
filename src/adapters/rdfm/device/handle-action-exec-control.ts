import { Type } from 'typebox';
import { notFound } from '../../../core/errors.ts';
import { actionsQueuedSubject } from '../../../services/remote/actions.ts';
import type { FrameHandler } from './frame-handler.ts';

/** RDFM's device retries a run it had no room for after this long. */
const fullRetryMs = 5_000;

/**
 * `action_exec_control`: the device took a run (`ok`: fleetd marked it sent before sending) or has
 * no room for it now (`full`: it waits again, first in line, and is sent again a while later).
 */
export const actionExecControl: FrameHandler<{ execution_id: string; status: 'ok' | 'full' }> = {
  method: 'action_exec_control',
  schema: Type.Object({ execution_id: Type.String({ minLength: 1, maxLength: 100 }), status: Type.Union([Type.Literal('ok'), Type.Literal('full')]) }),
  async handle(connection, frame) {
    const { hub, device } = connection;
    const run = await hub.services.store.db.selectFrom('action_runs').select('id').where('id', '=', frame.execution_id).where('device_id', '=', device.id).executeTakeFirst();
    if (!run) throw notFound('execution');
    if (frame.status === 'ok') return;
    await hub.services.actions.requeue(run.id);
    setTimeout(() => hub.bus.publish(actionsQueuedSubject, { deviceId: device.id }), fullRetryMs).unref();
  },
};
