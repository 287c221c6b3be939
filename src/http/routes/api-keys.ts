import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { authErrors, Name, Nullable, NullableRole, Page, PageQuery, RoleSchema, Timestamp } from '../schemas.ts';
import { OrgParams } from './organizations.ts';

const ApiKey = Type.Object({
  id: Type.String(),
  orgId: Type.String(),
  name: Type.String(),
  prefix: Type.String({ description: 'The non-secret part of the key, fk_<prefix>_...' }),
  userId: Nullable(Type.String()),
  deviceId: Nullable(Type.String()),
  role: NullableRole,
  createdBy: Type.String(),
  createdAt: Timestamp,
  expiresAt: Nullable(Timestamp),
  lastUsedAt: Nullable(Timestamp),
  revokedAt: Nullable(Timestamp),
  revokedBy: Nullable(Type.String()),
});
const KeyParams = Type.Object({ ...OrgParams.properties, keyId: Type.String({ minLength: 1, maxLength: 100 }) });

export const apiKeyRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { apiKeys } = services;

  app.get(
    '/orgs/:orgId/api-keys',
    {
      config: { access: { actions: ['apikey.read'] } },
      schema: {
        tags: ['api keys'],
        summary: 'List API keys (admins: all of the organization; others: their own)',
        params: OrgParams,
        querystring: Type.Object({ ...PageQuery, userId: Type.Optional(Type.String()), revoked: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        response: { 200: Page(ApiKey), ...authErrors(404) },
      },
    },
    async (request) => apiKeys.list(actorOf(request).principal, request.params.orgId, request.query, request.query),
  );

  app.post(
    '/orgs/:orgId/api-keys',
    {
      config: { access: { actions: ['apikey.manage'] } },
      schema: {
        tags: ['api keys'],
        summary: 'Create an API key; the secret is in this response only',
        description:
          'The key acts for a user (by default you) in this organization, with `role` or that user\'s role, whichever is lower at each use. Send it as "Authorization: Bearer fk_...". API keys cannot create keys.',
        params: OrgParams,
        body: Type.Object(
          {
            name: Name,
            userId: Type.Optional(Type.String({ description: 'The user the key acts for; by default you' })),
            deviceId: Type.Optional(Type.String({ description: 'Instead of a user: the device that authenticates with the key (admins)' })),
            role: Type.Optional(RoleSchema),
            expiresAt: Type.Optional(Timestamp),
          },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ ...ApiKey.properties, key: Type.String({ description: 'The whole key; shown once' }) }), ...authErrors(404) },
      },
    },
    async (request, reply) => reply.status(201).send(await apiKeys.create(actorOf(request), request.params.orgId, request.body)),
  );

  app.get(
    '/orgs/:orgId/api-keys/:keyId',
    {
      config: { access: { actions: ['apikey.read'] } },
      schema: { tags: ['api keys'], summary: 'Get an API key (never its secret)', params: KeyParams, response: { 200: ApiKey, ...authErrors(404) } },
    },
    async (request) => apiKeys.get(actorOf(request).principal, request.params.orgId, request.params.keyId),
  );

  app.delete(
    '/orgs/:orgId/api-keys/:keyId',
    {
      config: { access: { actions: ['apikey.manage'] } },
      schema: { tags: ['api keys'], summary: 'Revoke an API key; it is kept, with who revoked it and when', params: KeyParams, response: { 200: ApiKey, ...authErrors(404) } },
    },
    async (request) => apiKeys.revoke(actorOf(request), request.params.orgId, request.params.keyId),
  );
};
