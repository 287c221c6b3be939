import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { authErrors, Nullable, Page, PageQuery, Timestamp } from '../schemas.ts';
import { OrgParams } from './organizations.ts';

const ShellSession = Type.Object({
  id: Type.String(),
  orgId: Type.String(),
  deviceId: Type.String(),
  openedBy: Type.Object({ type: Type.String(), id: Type.String() }),
  status: Type.Union([Type.Literal('waiting'), Type.Literal('attached'), Type.Literal('closed')], { description: 'waiting for the device to dial back, attached, closed' }),
  node: Type.String({ description: "The fleetd node of the operator's socket" }),
  createdAt: Timestamp,
  attachedAt: Nullable(Timestamp),
  closedAt: Nullable(Timestamp),
  closeReason: Nullable(Type.String()),
  bytesToDevice: Type.Integer(),
  bytesFromDevice: Type.Integer(),
});

/** The remote shells opened on the organization's devices (the WebSocket ends are in src/adapters/shell). */
export const shellSessionRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  app.get(
    '/orgs/:orgId/shell-sessions',
    {
      config: { access: { actions: ['device.shell'] } },
      schema: {
        tags: ['devices'],
        summary: 'Remote shell sessions, oldest first (admins): who opened which, when, how long, how many bytes',
        params: OrgParams,
        querystring: Type.Object({ ...PageQuery, deviceId: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })) }, { additionalProperties: false }),
        response: { 200: Page(ShellSession), ...authErrors(404) },
      },
    },
    async (request) => {
      const { deviceId, ...page } = request.query;
      return services.shellSessions.list(actorOf(request).principal, request.params.orgId, { ...(deviceId !== undefined && { deviceId }) }, page);
    },
  );
};
