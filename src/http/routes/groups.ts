import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { metadataKeyPattern } from '../../services/device-query.ts';
import { maxGroupPackages, maxMembersPerCall, type UpdatePolicy } from '../../services/groups.ts';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { authErrors, Name, Nullable, Page, PageQuery, Timestamp } from '../schemas.ts';
import { Device } from './devices.ts';
import { OrgParams } from './organizations.ts';

const Tag = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$', description: 'Letters, digits and _ . : -' });
const DeviceId = Type.String({ minLength: 1, maxLength: 100 });
const Filter = Type.Object(
  {
    q: Type.Optional(Type.String({ maxLength: 200, description: 'Text in the name, id or model' })),
    tags: Type.Optional(Type.Array(Tag, { maxItems: 20, description: 'Devices with every one of these tags' })),
    online: Type.Optional(Type.Boolean()),
    model: Type.Optional(Type.String({ maxLength: 200 })),
    metadata: Type.Optional(
      Type.Record(Type.String({ pattern: metadataKeyPattern }), Type.Union([Type.String({ maxLength: 200 }), Type.Number(), Type.Boolean()]), {
        additionalProperties: false,
        maxProperties: 20,
        description: 'Top-level metadata keys, each with the value it must equal (type included)',
      }),
    ),
  },
  { additionalProperties: false, description: 'Devices matching every criterion given; {} matches every device of the organization' },
);
const Description = Type.String({ maxLength: 1000 });
const Priority = Type.Integer({ minimum: -1_000_000, maximum: 1_000_000, description: 'For a device in several groups, the highest priority decides; between equals, the older group' });
const Group = Type.Object({
  id: Type.String(),
  orgId: Type.String(),
  name: Type.String(),
  description: Type.String(),
  kind: Type.Union([Type.Literal('static'), Type.Literal('dynamic')], { description: 'dynamic exactly when the group has a filter' }),
  filter: Nullable(Filter),
  priority: Type.Integer(),
  updatePolicy: Type.Union([Type.Literal('no_update'), Type.Literal('exact_match')], { description: "What the group's devices update to: nothing, or exactly targetVersion" }),
  targetVersion: Nullable(Type.String()),
  metadata: Type.Record(Type.String(), Type.String()),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
const Version = Type.String({ minLength: 1, maxLength: 200 });
const PackageSet = Type.Object(
  { packageIds: Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: maxGroupPackages, description: 'Packages the devices may be given; none: every package of the organization' }) },
  { additionalProperties: false },
);
const GroupParams = Type.Object({ ...OrgParams.properties, groupId: Type.String({ minLength: 1, maxLength: 100 }) });
const MemberParams = Type.Object({ ...GroupParams.properties, deviceId: DeviceId });
const Editable = {
  description: Type.Optional(Description),
  priority: Type.Optional(Priority),
  filter: Type.Optional(Nullable(Filter)),
  metadata: Type.Optional(
    Type.Record(Type.String({ minLength: 1, maxLength: 200 }), Type.String({ maxLength: 1000 }), { maxProperties: 100, description: 'Free string keys; a change replaces them all' }),
  ),
};

export const groupRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { groups } = services;

  app.get(
    '/orgs/:orgId/groups',
    {
      config: { access: { actions: ['device.read'] } },
      schema: {
        tags: ['groups'],
        summary: "List the organization's device groups",
        params: OrgParams,
        querystring: Type.Object({ ...PageQuery, q: Type.Optional(Type.String({ maxLength: 200, description: 'Text in the name or description' })) }, { additionalProperties: false }),
        response: { 200: Page(Group), ...authErrors(404) },
      },
    },
    async (request) => groups.list(actorOf(request).principal, request.params.orgId, { q: request.query.q }, request.query),
  );

  app.post(
    '/orgs/:orgId/groups',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['groups'],
        summary: 'Create a group (admins): with a filter it is dynamic, without one a static list that starts empty',
        params: OrgParams,
        body: Type.Object({ name: Name, ...Editable }, { additionalProperties: false }),
        response: { 201: Group, ...authErrors(404, 409) },
      },
    },
    async (request, reply) => reply.status(201).send(await groups.create(actorOf(request), request.params.orgId, request.body)),
  );

  app.get(
    '/orgs/:orgId/groups/:groupId',
    {
      config: { access: { actions: ['device.read'] } },
      schema: { tags: ['groups'], summary: 'Get a group', params: GroupParams, response: { 200: Group, ...authErrors(404) } },
    },
    async (request) => groups.get(actorOf(request).principal, request.params.orgId, request.params.groupId),
  );

  app.patch(
    '/orgs/:orgId/groups/:groupId',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['groups'],
        summary: 'Change a group (admins)',
        description: 'A filter on a static group makes it dynamic and drops its member list; a null filter makes a dynamic group static, with no members.',
        params: GroupParams,
        body: Type.Object({ name: Type.Optional(Name), ...Editable }, { additionalProperties: false, minProperties: 1 }),
        response: { 200: Group, ...authErrors(404, 409) },
      },
    },
    async (request) => groups.update(actorOf(request), request.params.orgId, request.params.groupId, request.body),
  );

  app.delete(
    '/orgs/:orgId/groups/:groupId',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: { tags: ['groups'], summary: 'Delete a group (admins); its devices stay', params: GroupParams, response: { 204: Type.Null(), ...authErrors(404) } },
    },
    async (request, reply) => {
      await groups.delete(actorOf(request), request.params.orgId, request.params.groupId);
      return reply.status(204).send(null);
    },
  );

  app.put(
    '/orgs/:orgId/groups/:groupId/update-policy',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['groups'],
        summary: "Set what the group's devices update to (admins): no_update, or exact_match with targetVersion",
        description: 'A device follows the policy of its effective group (its highest-priority one) unless a running deployment holds it. Its devices online are told to check for updates.',
        params: GroupParams,
        body: Type.Union(
          [
            Type.Object({ policy: Type.Literal('no_update') }, { additionalProperties: false }),
            Type.Object({ policy: Type.Literal('exact_match'), targetVersion: Version }, { additionalProperties: false }),
          ],
          { description: 'exact_match needs targetVersion; no_update takes none' },
        ),
        response: { 200: Group, ...authErrors(404) },
      },
    },
    async (request) => groups.setUpdatePolicy(actorOf(request), request.params.orgId, request.params.groupId, request.body as UpdatePolicy),
  );

  app.get(
    '/orgs/:orgId/groups/:groupId/packages',
    {
      config: { access: { actions: ['device.read'] } },
      schema: { tags: ['groups'], summary: "The group's package set, oldest package first", params: GroupParams, response: { 200: PackageSet, ...authErrors(404) } },
    },
    async (request) => ({ packageIds: await groups.packageIds(actorOf(request).principal, request.params.orgId, request.params.groupId) }),
  );

  app.put(
    '/orgs/:orgId/groups/:groupId/packages',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['groups'],
        summary: "Replace the group's package set (admins); [] clears it",
        description: "The update check resolves over these packages (RDFM's group packages); with none, over every package of the device's type. A package that is not the organization's: 409, and nothing changes. Its devices online are told to check for updates.",
        params: GroupParams,
        body: PackageSet,
        response: { 200: PackageSet, ...authErrors(404, 409) },
      },
    },
    async (request) => ({ packageIds: await groups.setPackages(actorOf(request), request.params.orgId, request.params.groupId, request.body.packageIds) }),
  );

  app.get(
    '/orgs/:orgId/groups/:groupId/devices',
    {
      config: { access: { actions: ['device.read'] } },
      schema: {
        tags: ['groups'],
        summary: "The group's devices; a dynamic group's are those its filter matches now",
        params: GroupParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(Device), ...authErrors(404) },
      },
    },
    async (request) => groups.members(actorOf(request).principal, request.params.orgId, request.params.groupId, request.query),
  );

  app.post(
    '/orgs/:orgId/groups/:groupId/members',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['groups'],
        summary: 'Add devices to a static group (admins); all of them, or none when one is not a device of the organization',
        params: GroupParams,
        body: Type.Object({ deviceIds: Type.Array(DeviceId, { minItems: 1, maxItems: maxMembersPerCall }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ added: Type.Integer({ description: 'Devices that were not members yet' }) }), ...authErrors(404, 409) },
      },
    },
    async (request) => groups.addMembers(actorOf(request), request.params.orgId, request.params.groupId, request.body.deviceIds),
  );

  app.delete(
    '/orgs/:orgId/groups/:groupId/members/:deviceId',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: { tags: ['groups'], summary: 'Remove a device from a static group (admins)', params: MemberParams, response: { 204: Type.Null(), ...authErrors(404, 409) } },
    },
    async (request, reply) => {
      await groups.removeMembers(actorOf(request), request.params.orgId, request.params.groupId, [request.params.deviceId]);
      return reply.status(204).send(null);
    },
  );
};
