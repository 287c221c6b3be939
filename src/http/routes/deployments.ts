import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { authErrors, Name, Nullable, Page, PageQuery, Timestamp } from '../schemas.ts';
import { OrgParams } from './organizations.ts';

const DeploymentStatus = Type.Union([Type.Literal('scheduled'), Type.Literal('running'), Type.Literal('paused'), Type.Literal('cancelled'), Type.Literal('completed')]);
const DeviceStatus = Type.Union([
  Type.Literal('scheduled'),
  Type.Literal('pending'),
  Type.Literal('downloading'),
  Type.Literal('installing'),
  Type.Literal('success'),
  Type.Literal('failure'),
  Type.Literal('cancelled'),
]);
const StartAt = Type.String({ format: 'date-time' });
const Phase = Type.Union(
  [
    Type.Object({ size: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'Devices' }), startAt: Type.Optional(StartAt) }, { additionalProperties: false }),
    Type.Object({ percent: Type.Number({ exclusiveMinimum: 0, maximum: 100, description: "Percent of all the deployment's devices, rounded up" }), startAt: Type.Optional(StartAt) }, { additionalProperties: false }),
  ],
  { description: 'A phase takes a number or a percentage of the devices; it starts once the previous one is finished and its startAt has come' },
);
const Hhmm = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'HH:MM, UTC' });
const MaintenanceWindow = Type.Object(
  {
    days: Type.Optional(Type.Array(Type.Integer({ minimum: 0, maximum: 6 }), { minItems: 1, maxItems: 7, uniqueItems: true, description: '0 = Sunday; every day when absent' })),
    start: Hhmm,
    end: Hhmm,
  },
  { additionalProperties: false, description: 'When devices may update, in UTC; an end before the start spans midnight (the window belongs to the day it starts)' },
);
const StatusCounts = Type.Record(Type.String(), Type.Integer(), { description: 'Devices by status' });
const Deployment = Type.Object({
  id: Type.String(),
  orgId: Type.String(),
  groupId: Type.String(),
  name: Type.String(),
  targetVersion: Type.String(),
  status: DeploymentStatus,
  phases: Type.Array(Phase),
  maintenanceWindow: Nullable(MaintenanceWindow),
  failureThreshold: Type.Number(),
  currentPhase: Type.Integer({ description: 'Index of the phase being rolled out' }),
  pausedReason: Nullable(Type.String()),
  startAt: Nullable(Timestamp),
  createdBy: Type.String(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
  finishedAt: Nullable(Timestamp),
});
const DeploymentWithProgress = Type.Object({
  ...Deployment.properties,
  progress: Type.Object({
    devices: Type.Integer(),
    byStatus: StatusCounts,
    phases: Type.Array(Type.Object({ phase: Type.Integer(), devices: Type.Integer(), byStatus: StatusCounts })),
  }),
});
const DeploymentDevice = Type.Object({
  deviceId: Type.String(),
  phase: Type.Integer(),
  status: DeviceStatus,
  packageId: Nullable(Type.String({ description: 'The package it was offered last' })),
  progress: Nullable(Type.Integer()),
  reason: Nullable(Type.String({ description: 'Why it failed' })),
  updatedAt: Timestamp,
  finishedAt: Nullable(Timestamp),
});
const UpdateEvent = Type.Object({
  id: Type.String(),
  orgId: Type.String(),
  deploymentId: Nullable(Type.String()),
  deviceId: Nullable(Type.String({ description: 'Null for a step of the deployment itself' })),
  kind: Type.String({ description: 'deployment.created|started|paused|resumed|cancelled|completed, phase.started|completed, device.offered|downloading|installing|success|failure' }),
  details: Type.Object({}, { additionalProperties: true }),
  at: Timestamp,
});
const DeploymentParams = Type.Object({ ...OrgParams.properties, deploymentId: Type.String({ minLength: 1, maxLength: 100 }) });

/** Phased rollouts of a version to a group's devices. */
export const deploymentRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { deployments } = services;

  app.post(
    '/orgs/:orgId/deployments',
    {
      config: { access: { actions: ['deployment.manage'] } },
      schema: {
        tags: ['deployments'],
        summary: "Roll a version out to a group's devices, phase by phase (admins)",
        description:
          'The devices are those of the group now, spread over the phases in order. A phase pauses the deployment as soon as more than failureThreshold percent of its devices failed. A target version without any package of the organization: 409.',
        params: OrgParams,
        body: Type.Object(
          {
            name: Type.Optional(Name),
            groupId: Type.String({ minLength: 1, maxLength: 100 }),
            targetVersion: Type.String({ minLength: 1, maxLength: 200 }),
            phases: Type.Optional(Type.Array(Phase, { minItems: 1, maxItems: 50, description: 'Default: one phase of every device' })),
            maintenanceWindow: Type.Optional(Nullable(MaintenanceWindow)),
            failureThreshold: Type.Optional(Type.Number({ minimum: 0, maximum: 100, default: 20, description: 'Percent' })),
            startAt: Type.Optional(StartAt),
          },
          { additionalProperties: false },
        ),
        response: { 201: DeploymentWithProgress, ...authErrors(404, 409) },
      },
    },
    async (request, reply) => reply.status(201).send(await deployments.create(actorOf(request), request.params.orgId, request.body)),
  );

  app.get(
    '/orgs/:orgId/deployments',
    {
      config: { access: { actions: ['deployment.read'] } },
      schema: {
        tags: ['deployments'],
        summary: "List the organization's deployments, oldest first",
        params: OrgParams,
        querystring: Type.Object({ ...PageQuery, status: Type.Optional(DeploymentStatus), groupId: Type.Optional(Type.String({ maxLength: 100 })) }, { additionalProperties: false }),
        response: { 200: Page(Deployment), ...authErrors(404) },
      },
    },
    async (request) => {
      const { status, groupId, ...page } = request.query;
      return deployments.list(actorOf(request).principal, request.params.orgId, { ...(status && { status }), ...(groupId && { groupId }) }, page);
    },
  );

  app.get(
    '/orgs/:orgId/deployments/:deploymentId',
    {
      config: { access: { actions: ['deployment.read'] } },
      schema: { tags: ['deployments'], summary: 'A deployment, with its devices counted by status, in all and per phase', params: DeploymentParams, response: { 200: DeploymentWithProgress, ...authErrors(404) } },
    },
    async (request) => deployments.get(actorOf(request).principal, request.params.orgId, request.params.deploymentId),
  );

  app.get(
    '/orgs/:orgId/deployments/:deploymentId/devices',
    {
      config: { access: { actions: ['deployment.read'] } },
      schema: {
        tags: ['deployments'],
        summary: "The deployment's devices and how far each got",
        params: DeploymentParams,
        querystring: Type.Object({ ...PageQuery, status: Type.Optional(DeviceStatus) }, { additionalProperties: false }),
        response: { 200: Page(DeploymentDevice), ...authErrors(404) },
      },
    },
    async (request) => {
      const { status, ...page } = request.query;
      return deployments.devices(actorOf(request).principal, request.params.orgId, request.params.deploymentId, { ...(status && { status }) }, page);
    },
  );

  app.get(
    '/orgs/:orgId/deployments/:deploymentId/events',
    {
      config: { access: { actions: ['deployment.read'] } },
      schema: {
        tags: ['deployments'],
        summary: 'The full history of the deployment and of its devices’ updates, oldest first',
        params: DeploymentParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(UpdateEvent), ...authErrors(404) },
      },
    },
    async (request) => deployments.events(actorOf(request).principal, request.params.orgId, request.params.deploymentId, request.query),
  );

  const verbs = {
    pause: { summary: 'Pause a deployment (admins): no more devices are offered the update until it resumes', run: deployments.pause.bind(deployments) },
    resume: { summary: 'Resume a paused deployment (admins): the failures of the current phase so far are accepted', run: deployments.resume.bind(deployments) },
    cancel: { summary: 'Cancel a deployment (admins): devices that have not begun are cancelled', run: deployments.cancel.bind(deployments) },
  };
  for (const [verb, { summary, run }] of Object.entries(verbs)) {
    app.post(
      `/orgs/:orgId/deployments/:deploymentId/${verb}`,
      {
        config: { access: { actions: ['deployment.manage'] } },
        schema: { tags: ['deployments'], summary, params: DeploymentParams, response: { 200: DeploymentWithProgress, ...authErrors(404, 409) } },
      },
      async (request) => run(actorOf(request), request.params.orgId, request.params.deploymentId),
    );
  }
};
