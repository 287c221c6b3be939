import { Type } from 'typebox';
import { actionsQueuedSubject } from '../../../services/remote/actions.ts';
import { sendFrame } from './connection.ts';
import type { FrameHandler } from './frame-handler.ts';

/** `capability_report`: stored as the device's capabilities (shell, action, filesystem, update-progress). */
export const capabilityReport: FrameHandler<{ capabilities: Record<string, boolean> }> = {
  method: 'capability_report',
  schema: Type.Object({
    capabilities: Type.Record(Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' }), Type.Boolean(), { additionalProperties: false, maxProperties: 64 }),
  }),
  async handle(connection, { capabilities }) {
    const hadActions = connection.capabilities.action === true;
    connection.capabilities = await connection.hub.services.capabilities.set(connection.device, capabilities);
    if (capabilities.action !== true || hadActions) return;
    // As RDFM's server does once it knows the device runs actions: ask for them, and send what waits.
    sendFrame(connection, { method: 'action_list_query' });
    connection.hub.bus.publish(actionsQueuedSubject, { deviceId: connection.device.id });
  },
};
