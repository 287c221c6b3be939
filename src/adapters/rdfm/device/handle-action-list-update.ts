import { Type } from 'typebox';
import { badRequest } from '../../../core/errors.ts';
import type { FrameHandler } from './frame-handler.ts';

interface RdfmAction {
  action_id: string;
  action_name: string;
  description?: string;
  command?: string[];
  timeout?: number;
}

/** `action_list_update`: the device's actions, replacing what it advertised before; command and timeout are kept as details. */
export const actionListUpdate: FrameHandler<{ actions: RdfmAction[] }> = {
  method: 'action_list_update',
  schema: Type.Object({
    actions: Type.Array(
      Type.Object({
        action_id: Type.String({ pattern: '^[A-Za-z0-9._:@~+-]{1,128}$' }),
        action_name: Type.String({ minLength: 1, maxLength: 200 }),
        description: Type.Optional(Type.String({ maxLength: 1000 })),
        command: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 100 })),
        timeout: Type.Optional(Type.Number({ minimum: 0 })),
      }),
      { maxItems: 200 },
    ),
  }),
  async handle(connection, { actions }) {
    if (new Set(actions.map((action) => action.action_id)).size !== actions.length) throw badRequest('duplicate action_id');
    await connection.hub.services.actions.advertise(
      connection.device,
      actions.map((action) => ({
        id: action.action_id,
        name: action.action_name,
        description: action.description ?? '',
        details: { command: action.command ?? [], timeout: action.timeout ?? null },
      })),
    );
  },
};
