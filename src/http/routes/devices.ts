import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { StateDocument } from '../../core/device-state.ts';
import type { Hub } from '../../hub/hub.ts';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { authErrors, Name, Nullable, Page, PageQuery, Timestamp } from '../schemas.ts';
import { OrgParams } from './organizations.ts';

const Document = Type.Object({}, { additionalProperties: true, description: 'A JSON object' });
const Tag = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$', description: 'Letters, digits and _ . : -' });
export const Tags = Type.Array(Tag, { maxItems: 50 });
const Text = Type.String({ minLength: 1, maxLength: 200 });
export const ExternalId = Type.String({ pattern: '^[A-Za-z0-9._:@-]{1,128}$', description: 'The id the device calls itself by (Shelly src, relay channel, check-in id)' });

export const Device = Type.Object({
  id: Type.String(),
  orgId: Type.String(),
  name: Type.String(),
  externalId: Nullable(Type.String({ description: 'The id the device calls itself by (Shelly src, relay channel, check-in id)' })),
  model: Nullable(Type.String()),
  firmware: Nullable(Type.String()),
  tags: Type.Array(Type.String()),
  metadata: Document,
  online: Type.Boolean(),
  connectedNode: Nullable(Type.String({ description: 'The fleetd node holding its connection' })),
  lastSeenAt: Nullable(Timestamp),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
const DeviceState = Type.Object({
  reported: Document,
  reportedVersion: Type.Integer(),
  desired: Document,
  desiredVersion: Type.Integer(),
  delta: Nullable(Document),
});
const DeviceParams = Type.Object({ ...OrgParams.properties, deviceId: Type.String({ minLength: 1, maxLength: 100 }) });
const Editable = {
  externalId: Type.Optional(Nullable(ExternalId)),
  model: Type.Optional(Nullable(Text)),
  firmware: Type.Optional(Nullable(Text)),
  tags: Type.Optional(Tags),
  metadata: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'Merged into the metadata; null removes a field' })),
};

export const deviceRoutes: FastifyPluginAsyncTypebox<{ services: Services; hub: Hub }> = async (app, { services, hub }) => {
  const { devices } = services;

  app.get(
    '/orgs/:orgId/devices',
    {
      config: { access: { actions: ['device.read'] } },
      schema: {
        tags: ['devices'],
        summary: "List the organization's devices",
        params: OrgParams,
        querystring: Type.Object(
          {
            ...PageQuery,
            q: Type.Optional(Type.String({ maxLength: 200, description: 'Text in the name, id or model' })),
            tag: Type.Optional(Type.Array(Tag, { maxItems: 20, description: 'Devices with every one of these tags (repeat the parameter)' })),
            online: Type.Optional(Type.Boolean()),
            model: Type.Optional(Type.String({ maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Page(Device), ...authErrors(404) },
      },
    },
    async (request) => devices.list(actorOf(request).principal, request.params.orgId, { ...request.query, tags: request.query.tag }, request.query),
  );

  app.post(
    '/orgs/:orgId/devices',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['devices'],
        summary: 'Register a device (admins); give it a key with POST /api-keys and its deviceId',
        params: OrgParams,
        body: Type.Object({ name: Name, ...Editable }, { additionalProperties: false }),
        response: { 201: Device, ...authErrors(404, 413) },
      },
    },
    async (request, reply) => {
      const { metadata, ...rest } = request.body;
      return reply.status(201).send(await devices.create(actorOf(request), request.params.orgId, { ...rest, metadata: metadata as StateDocument | undefined }));
    },
  );

  app.get(
    '/orgs/:orgId/devices/:deviceId',
    {
      config: { access: { actions: ['device.read'] } },
      schema: { tags: ['devices'], summary: 'Get a device (members, or the device itself)', params: DeviceParams, response: { 200: Device, ...authErrors(404) } },
    },
    async (request) => devices.get(actorOf(request).principal, request.params.orgId, request.params.deviceId),
  );

  app.patch(
    '/orgs/:orgId/devices/:deviceId',
    {
      config: { access: { actions: ['device.update'] } },
      schema: {
        tags: ['devices'],
        summary: 'Rename, retag, or change the model, firmware or metadata of a device (operators)',
        params: DeviceParams,
        body: Type.Object({ name: Type.Optional(Name), ...Editable }, { additionalProperties: false, minProperties: 1 }),
        response: { 200: Device, ...authErrors(404, 413) },
      },
    },
    async (request) => {
      const { metadata, ...rest } = request.body;
      return devices.update(actorOf(request), request.params.orgId, request.params.deviceId, { ...rest, metadata: metadata as StateDocument | undefined });
    },
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

  app.get(
    '/orgs/:orgId/devices/:deviceId/state',
    {
      config: { access: { actions: ['device.read'] } },
      schema: {
        tags: ['devices'],
        summary: "A device's reported and desired state, and the delta between them",
        params: DeviceParams,
        response: { 200: DeviceState, ...authErrors(404) },
      },
    },
    async (request) => devices.state(actorOf(request).principal, request.params.orgId, request.params.deviceId),
  );

  app.patch(
    '/orgs/:orgId/devices/:deviceId/state/desired',
    {
      config: { access: { actions: ['device.control'] } },
      schema: {
        tags: ['devices'],
        summary: 'Ask for state: merged into the desired state (operators); null removes a field',
        params: DeviceParams,
        body: Document,
        response: { 200: DeviceState, ...authErrors(404, 409, 413) },
      },
    },
    async (request) => {
      const state = await devices.setDesired(actorOf(request), request.params.orgId, request.params.deviceId, request.body as StateDocument);
      // The node holding the device's connection sends it the new desired state.
      hub.links.desiredChanged(request.params.deviceId, state);
      return state;
    },
  );

  app.patch(
    '/orgs/:orgId/devices/:deviceId/state/reported',
    {
      config: { access: { actions: ['device.report'] } },
      schema: {
        tags: ['devices'],
        summary: 'A device reports (part of) its state over HTTP; only the device itself may',
        params: DeviceParams,
        body: Document,
        response: { 200: Type.Object({ state: DeviceState, changed: Nullable(Document) }), ...authErrors(404, 409, 413) },
      },
    },
    async (request) => devices.report(actorOf(request).principal, request.params.orgId, request.params.deviceId, request.body as StateDocument),
  );
};
