import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Services } from '../../services/index.ts';
import { slugPattern } from '../../services/organizations.ts';
import { actorOf } from '../access.ts';
import { authErrors, Name, Organization, Page, PageQuery } from '../schemas.ts';

export const OrgParams = Type.Object({ orgId: Type.String({ minLength: 1, maxLength: 100, description: 'Organization id or slug' }) });
const Slug = Type.String({ pattern: slugPattern, description: 'Lowercase letters, digits and dashes' });

export const organizationRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { organizations } = services;

  app.get(
    '/orgs',
    {
      config: { access: { actions: ['org.read'] } },
      schema: {
        tags: ['organizations'],
        summary: 'List the organizations you belong to (system admins: all)',
        querystring: Type.Object({ ...PageQuery, q: Type.Optional(Type.String({ maxLength: 200, description: 'Text in the name or slug' })) }, { additionalProperties: false }),
        response: { 200: Page(Organization), ...authErrors() },
      },
    },
    async (request) => organizations.list(actorOf(request).principal, { q: request.query.q }, request.query),
  );

  app.post(
    '/orgs',
    {
      config: { access: { actions: ['org.create'] } },
      schema: {
        tags: ['organizations'],
        summary: 'Create an organization (system admins)',
        body: Type.Object({ slug: Slug, name: Name, ownerId: Type.Optional(Type.String({ description: 'Its first owner; by default you' })) }, { additionalProperties: false }),
        response: { 201: Organization, ...authErrors(409) },
      },
    },
    async (request, reply) => reply.status(201).send(await organizations.create(actorOf(request), request.body)),
  );

  app.get(
    '/orgs/:orgId',
    {
      config: { access: { actions: ['org.read'] } },
      schema: { tags: ['organizations'], summary: 'Get an organization', params: OrgParams, response: { 200: Organization, ...authErrors(404) } },
    },
    async (request) => organizations.get(actorOf(request).principal, request.params.orgId),
  );

  app.patch(
    '/orgs/:orgId',
    {
      config: { access: { actions: ['org.update'] } },
      schema: {
        tags: ['organizations'],
        summary: 'Rename an organization or change its slug (admins)',
        params: OrgParams,
        body: Type.Object({ slug: Type.Optional(Slug), name: Type.Optional(Name) }, { additionalProperties: false, minProperties: 1 }),
        response: { 200: Organization, ...authErrors(404, 409) },
      },
    },
    async (request) => organizations.update(actorOf(request), request.params.orgId, request.body),
  );

  app.delete(
    '/orgs/:orgId',
    {
      config: { access: { actions: ['org.delete'] } },
      schema: { tags: ['organizations'], summary: 'Delete an organization and everything in it (owners)', params: OrgParams, response: { 204: Type.Null(), ...authErrors(404) } },
    },
    async (request, reply) => {
      await organizations.delete(actorOf(request), request.params.orgId);
      return reply.status(204).send(null);
    },
  );
};
