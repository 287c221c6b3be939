import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { authErrors, Email, Name, Page, PageQuery, Password, RoleSchema, Timestamp } from '../schemas.ts';
import { OrgParams } from './organizations.ts';

const Member = Type.Object({
  user: Type.Object({ id: Type.String(), email: Type.String(), name: Type.String() }),
  role: RoleSchema,
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
const MemberParams = Type.Object({ ...OrgParams.properties, userId: Type.String({ minLength: 1, maxLength: 100 }) });

export const memberRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { memberships } = services;

  app.get(
    '/orgs/:orgId/members',
    {
      config: { access: { actions: ['member.read'] } },
      schema: {
        tags: ['members'],
        summary: 'List the members of an organization',
        params: OrgParams,
        querystring: Type.Object({ ...PageQuery, role: Type.Optional(RoleSchema), q: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
        response: { 200: Page(Member), ...authErrors(404) },
      },
    },
    async (request) => memberships.list(actorOf(request).principal, request.params.orgId, request.query, request.query),
  );

  app.post(
    '/orgs/:orgId/members',
    {
      config: { access: { actions: ['member.manage'] } },
      schema: {
        tags: ['members'],
        summary: 'Add a user to the organization (admins); with a password, a new user is created',
        description: 'Nobody grants a role above their own; only owners make owners.',
        params: OrgParams,
        body: Type.Object({ email: Email, role: RoleSchema, name: Type.Optional(Name), password: Type.Optional(Password) }, { additionalProperties: false }),
        response: { 201: Member, ...authErrors(404, 409) },
      },
    },
    async (request, reply) => reply.status(201).send(await memberships.add(actorOf(request), request.params.orgId, request.body)),
  );

  app.patch(
    '/orgs/:orgId/members/:userId',
    {
      config: { access: { actions: ['member.manage'] } },
      schema: {
        tags: ['members'],
        summary: "Change a member's role (admins)",
        params: MemberParams,
        body: Type.Object({ role: RoleSchema }, { additionalProperties: false }),
        response: { 200: Member, ...authErrors(404, 409) },
      },
    },
    async (request) => memberships.changeRole(actorOf(request), request.params.orgId, request.params.userId, request.body.role),
  );

  app.delete(
    '/orgs/:orgId/members/:userId',
    {
      config: { access: { actions: ['member.manage'] } },
      schema: {
        tags: ['members'],
        summary: 'Remove a member (admins); their API keys for this organization are revoked',
        params: MemberParams,
        response: { 204: Type.Null(), ...authErrors(404, 409) },
      },
    },
    async (request, reply) => {
      await memberships.remove(actorOf(request), request.params.orgId, request.params.userId);
      return reply.status(204).send(null);
    },
  );
};
