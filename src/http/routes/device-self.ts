import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { authorize } from '../../core/access.ts';
import { badRequest, forbidden } from '../../core/errors.ts';
import type { Services } from '../../services/index.ts';
import type { DeviceRef } from '../../services/remote/target-device.ts';
import { actorOf } from '../access.ts';
import { authErrors, Timestamp } from '../schemas.ts';

/** What a device says of itself goes only for itself: the calling device, whatever other principals may do. */
export function callingDevice(request: FastifyRequest): DeviceRef {
  const { principal } = actorOf(request);
  if (principal.kind !== 'device') throw forbidden('Only a device reports of itself, with its own credential');
  const device = { id: principal.deviceId, orgId: principal.orgId };
  authorize(principal, 'device.report', { orgId: device.orgId, deviceId: device.id });
  return device;
}

export const ActionId = Type.String({ pattern: '^[A-Za-z0-9._:@~+-]{1,128}$', description: 'As the device names it: letters, digits and . _ : @ ~ + -' });
export const DeviceAction = Type.Object({ id: ActionId, name: Type.String(), description: Type.String(), updatedAt: Timestamp });
const Capabilities = Type.Record(Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' }), Type.Boolean(), {
  additionalProperties: false,
  maxProperties: 64,
  description: 'What the device can do, by name: shell, action, filesystem, update-progress, and others of its own',
});
const maxActions = 200;

/** Routes where a device (its key, or a check-in access token) describes itself: `self` is the caller. */
export const deviceSelfRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  app.put(
    '/devices/self/capabilities',
    {
      config: { access: { actions: ['device.report'] } },
      schema: {
        tags: ['devices'],
        summary: 'A device says what it can do (replaces what it said before); only the device itself may',
        body: Type.Object({ capabilities: Capabilities }, { additionalProperties: false }),
        response: { 200: Type.Object({ capabilities: Capabilities }), ...authErrors() },
      },
    },
    async (request) => ({ capabilities: await services.capabilities.set(callingDevice(request), request.body.capabilities) }),
  );

  app.put(
    '/devices/self/actions',
    {
      config: { access: { actions: ['device.report'] } },
      schema: {
        tags: ['devices'],
        summary: 'A device advertises the actions operators may run on it (replaces the list); only the device itself may',
        body: Type.Object(
          {
            actions: Type.Array(
              Type.Object({ id: ActionId, name: Type.String({ minLength: 1, maxLength: 200 }), description: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false }),
              { maxItems: maxActions },
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ actions: Type.Array(DeviceAction) }), ...authErrors() },
      },
    },
    async (request) => {
      const device = callingDevice(request);
      const { actions } = request.body;
      if (new Set(actions.map((action) => action.id)).size !== actions.length) throw badRequest('Each action id may appear once');
      return { actions: await services.actions.advertise(device, actions) };
    },
  );
};
