import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { decodeBase64 } from '../../core/base64.ts';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { authErrors, Nullable, Page, PageQuery, Timestamp } from '../schemas.ts';
import { ActionId, callingDevice, DeviceAction } from './device-self.ts';
import { OrgParams } from './organizations.ts';

const RunId = Type.String({ minLength: 1, maxLength: 100 });
const ActionRun = Type.Object({
  id: Type.String(),
  deviceId: Type.String(),
  actionId: Type.String(),
  status: Type.Union([Type.Literal('pending'), Type.Literal('sent'), Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('timeout'), Type.Literal('cancelled')], {
    description: 'pending (queued), sent (the device has it), then succeeded (exit code 0), failed, timeout (no result within actionTimeout) or cancelled',
  }),
  exitCode: Nullable(Type.Integer()),
  output: Nullable(Type.String({ description: 'What the action wrote, base64' })),
  error: Nullable(Type.String()),
  requestedBy: Type.Object({ type: Type.String(), id: Type.String() }),
  createdAt: Timestamp,
  sentAt: Nullable(Timestamp),
  finishedAt: Nullable(Timestamp),
});
const DeviceParams = Type.Object({ ...OrgParams.properties, deviceId: Type.String({ minLength: 1, maxLength: 100 }) });
const RunParams = Type.Object({ ...DeviceParams.properties, runId: RunId });
/** Output up to 1 MiB, in base64. */
const maxOutputChars = 1_398_104;

/** Actions devices advertise, runs of them queued for the device, their log, and the device's results. */
export const actionRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { actions } = services;

  app.get(
    '/orgs/:orgId/devices/:deviceId/actions',
    {
      config: { access: { actions: ['device.read'] } },
      schema: { tags: ['actions'], summary: 'The actions the device advertises', params: DeviceParams, response: { 200: Type.Object({ actions: Type.Array(DeviceAction) }), ...authErrors(404) } },
    },
    async (request) => ({ actions: await actions.list(actorOf(request).principal, request.params.orgId, request.params.deviceId) }),
  );

  app.post(
    '/orgs/:orgId/devices/:deviceId/actions/:actionId/runs',
    {
      config: { access: { actions: ['device.control'] } },
      schema: {
        tags: ['actions'],
        summary: 'Run an action on the device (operators): queued, and sent at once or when the device next connects',
        description: 'The result comes later: follow the run at …/action-runs/{runId}. 409 when the device runs no actions, 429 when actionQueueSize runs wait already.',
        params: Type.Object({ ...DeviceParams.properties, actionId: ActionId }),
        response: { 202: ActionRun, ...authErrors(404, 409) },
      },
    },
    async (request, reply) => reply.status(202).send(await actions.run(actorOf(request), request.params.orgId, request.params.deviceId, request.params.actionId)),
  );

  app.get(
    '/orgs/:orgId/devices/:deviceId/action-runs',
    {
      config: { access: { actions: ['device.read'] } },
      schema: {
        tags: ['actions'],
        summary: "The device's action runs, oldest first: the action log",
        params: DeviceParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(ActionRun), ...authErrors(404) },
      },
    },
    async (request) => actions.listRuns(actorOf(request).principal, request.params.orgId, request.params.deviceId, request.query),
  );

  app.get(
    '/orgs/:orgId/devices/:deviceId/action-runs/:runId',
    {
      config: { access: { actions: ['device.read'] } },
      schema: { tags: ['actions'], summary: 'One action run', params: RunParams, response: { 200: ActionRun, ...authErrors(404) } },
    },
    async (request) => actions.getRun(actorOf(request).principal, request.params.orgId, request.params.deviceId, request.params.runId),
  );

  app.post(
    '/orgs/:orgId/devices/:deviceId/action-runs/:runId/cancel',
    {
      config: { access: { actions: ['device.control'] } },
      schema: { tags: ['actions'], summary: 'Cancel a run that was not sent yet (operators)', params: RunParams, response: { 200: ActionRun, ...authErrors(404, 409) } },
    },
    async (request) => actions.cancel(actorOf(request), request.params.orgId, request.params.deviceId, request.params.runId),
  );

  app.post(
    '/devices/self/action-runs/:runId/result',
    {
      config: { access: { actions: ['device.report'] } },
      schema: {
        tags: ['actions'],
        summary: 'A device reports the result of a run it was sent; only that device may',
        params: Type.Object({ runId: RunId }),
        body: Type.Object(
          { exitCode: Type.Integer({ minimum: -2_147_483_648, maximum: 2_147_483_647 }), output: Type.Optional(Type.String({ maxLength: maxOutputChars, description: 'base64' })) },
          { additionalProperties: false },
        ),
        response: { 200: ActionRun, ...authErrors(404, 409) },
      },
    },
    async (request) => {
      const device = callingDevice(request);
      const { exitCode, output } = request.body;
      return actions.complete(device, request.params.runId, { exitCode, ...(output !== undefined && { output: decodeBase64(output) }) });
    },
  );
};
