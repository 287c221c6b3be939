import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { authErrors, Name, Page, PageQuery, Timestamp } from '../schemas.ts';
import { OrgParams } from './organizations.ts';

const Device = Type.Object({ id: Type.String(), orgId: Type.String(), name: Type.String(), createdAt: Timestamp, updatedAt: Timestamp });
const DeviceParams = Type.Object({ ...OrgParams.properties, deviceId: Type.String({ minLength: 1, maxLength: 100 }) });

export const deviceRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { devices } = services;

  app.get(
    '/orgs/:orgId/devices',
    {
      config: { access: { actions: ['device.read'] } },
      schema: {
        tags: ['devices'],
        summary: "List the organization's devices",
        params: OrgParams,
        querystring: Type.Object({ ...PageQuery, q: Type.Optional(Type.String({ maxLength: 200, description: 'Text in the name' })) }, { additionalProperties: false }),
        response: { 200: Page(Device), ...authErrors(404) },
      },
    },
    async (request) => devices.list(actorOf(request).principal, request.params.orgId, request.query, request.query),
  );

  app.post(
    '/orgs/:orgId/devices',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['devices'],
        summary: 'Register a device (admins); give it a key with POST /api-keys and its deviceId',
        params: OrgParams,
        body: Type.Object({ name: Name }, { additionalProperties: false }),
        response: { 201: Device, ...authErrors(404) },
      },
    },
    async (request, reply) => reply.status(201).send(await devices.create(actorOf(request), request.params.orgId, request.body)),
  );

  app.get(
    '/orgs/:orgId/devices/:deviceId',
    {
      config: { access: { actions: ['device.read'] } },
      schema: { tags: ['devices'], summary: 'Get a device (members, or the device itself)', params: DeviceParams, response: { 200: Device, ...authErrors(404) } },
    },
    async (request) => devices.get(actorOf(request).principal, request.params.orgId, request.params.deviceId),
  );

  app.delete(
    '/orgs/:orgId/devices/:deviceId',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: { tags: ['devices'], summary: 'Delete a device and revoke its keys (admins)', params: DeviceParams, response: { 204: Type.Null(), ...authErrors(404) } },
    },
    async (request, reply) => {
      await devices.delete(actorOf(request), request.params.orgId, request.params.deviceId);
      return reply.status(204).send(null);
    },
  );
};
