import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { authErrors, Email, Name, Page, PageQuery, Password, User } from '../schemas.ts';

const UserParams = Type.Object({ userId: Type.String({ minLength: 1, maxLength: 100 }) });

export const userRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { users } = services;

  app.get(
    '/users',
    {
      config: { access: { actions: ['user.list'] } },
      schema: {
        tags: ['users'],
        summary: 'List all users (system admins)',
        querystring: Type.Object(
          { ...PageQuery, q: Type.Optional(Type.String({ maxLength: 200, description: 'Text in the email or name' })), systemAdmin: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
        response: { 200: Page(User), ...authErrors() },
      },
    },
    async (request) => users.list(actorOf(request).principal, request.query, request.query),
  );

  app.post(
    '/users',
    {
      config: { access: { actions: ['user.create'] } },
      schema: {
        tags: ['users'],
        summary: 'Create a user (system admins)',
        body: Type.Object({ email: Email, name: Type.Optional(Name), password: Password, systemAdmin: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        response: { 201: User, ...authErrors(409) },
      },
    },
    async (request, reply) => reply.status(201).send(await users.create(actorOf(request), request.body)),
  );

  app.get(
    '/users/:userId',
    {
      config: { access: { actions: ['user.read'] } },
      schema: { tags: ['users'], summary: 'Get a user (yourself; system admins: anyone)', params: UserParams, response: { 200: User, ...authErrors(404) } },
    },
    async (request) => users.get(actorOf(request).principal, request.params.userId),
  );

  app.patch(
    '/users/:userId',
    {
      config: { access: { actions: ['user.update'] } },
      schema: {
        tags: ['users'],
        summary: 'Change your name or password (system admins: anyone, and who is a system admin)',
        description: 'A new password needs the current one (except from a system admin) and ends your other sessions.',
        params: UserParams,
        body: Type.Object(
          { name: Type.Optional(Name), password: Type.Optional(Password), currentPassword: Type.Optional(Type.String({ maxLength: 1024 })), systemAdmin: Type.Optional(Type.Boolean()) },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: User, ...authErrors(404, 409) },
      },
    },
    async (request) => users.update(actorOf(request), request.params.userId, request.body),
  );

  app.delete(
    '/users/:userId',
    {
      config: { access: { actions: ['user.delete'] } },
      schema: { tags: ['users'], summary: 'Delete a user (system admins)', params: UserParams, response: { 204: Type.Null(), ...authErrors(404, 409) } },
    },
    async (request, reply) => {
      await users.delete(actorOf(request), request.params.userId);
      return reply.status(204).send(null);
    },
  );
};
