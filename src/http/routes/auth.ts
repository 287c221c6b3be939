import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { systemActor } from '../../services/actor.ts';
import type { Services } from '../../services/index.ts';
import { actorOf, csrfCookie, sessionCookie } from '../access.ts';
import { authErrors, errors, Nullable, Organization, NullableRole, User } from '../schemas.ts';

const TokensResponse = Type.Object({
  accessToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Seconds until the access token expires' }),
  refreshToken: Type.Optional(Type.String({ description: 'Absent for browser sessions, whose refresh token is the session cookie' })),
  refreshExpiresIn: Type.Integer(),
  csrfToken: Type.Optional(Type.String({ description: 'Browser sessions: send it back as X-CSRF-Token on every non-GET request' })),
  user: User,
});

const Me = Type.Object({
  kind: Type.Union([Type.Literal('user'), Type.Literal('api_key'), Type.Literal('device')]),
  user: Nullable(User),
  systemAdmin: Type.Boolean(),
  apiKeyId: Nullable(Type.String()),
  deviceId: Nullable(Type.String()),
  sessionId: Nullable(Type.String()),
  organizations: Type.Array(Type.Object({ ...Organization.properties, role: NullableRole })),
});

export const authRoutes: FastifyPluginAsyncTypebox<{ services: Services; cookieSecure: boolean }> = async (app, { services, cookieSecure }) => {
  const setSessionCookies = (reply: FastifyReply, refreshToken: string, csrfToken: string, maxAge: number) => {
    const base = { path: '/', sameSite: 'strict' as const, secure: cookieSecure, maxAge };
    reply.setCookie(sessionCookie, refreshToken, { ...base, httpOnly: true });
    reply.setCookie(csrfCookie, csrfToken, { ...base, httpOnly: false });
  };

  app.post(
    '/auth/login',
    {
      config: { access: 'public' },
      schema: {
        tags: ['auth'],
        summary: 'Log in with email and password',
        description:
          'Returns a short-lived access token and a refresh token. With `"session": "cookie"` (the web console) the session lives in an HttpOnly cookie instead and the response carries the CSRF token. Repeated failures from one address are throttled (429).',
        body: Type.Object(
          {
            email: Type.String({ minLength: 1, maxLength: 254 }),
            password: Type.String({ minLength: 1, maxLength: 1024 }),
            session: Type.Optional(Type.Union([Type.Literal('token'), Type.Literal('cookie')], { default: 'token' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: TokensResponse, ...errors(401, 429) },
      },
    },
    async (request, reply) => {
      const browser = request.body.session === 'cookie';
      const tokens = await services.sessions.login(request.body.email, request.body.password, { ip: request.ip, userAgent: request.headers['user-agent'], requestId: request.id }, { browser });
      if (!browser) return tokens;
      setSessionCookies(reply, tokens.refreshToken, tokens.csrfToken!, tokens.refreshExpiresIn);
      return { ...tokens, refreshToken: undefined };
    },
  );

  app.post(
    '/auth/refresh',
    {
      config: { access: 'public' },
      schema: {
        tags: ['auth'],
        summary: 'Trade a refresh token for new tokens',
        description: 'The refresh token is rotated: the old one stops working, and presenting it again ends the session.',
        body: Type.Object({ refreshToken: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
        response: { 200: TokensResponse, ...errors(401, 429) },
      },
    },
    async (request) => services.sessions.refresh(request.body.refreshToken, { ip: request.ip }),
  );

  app.post(
    '/auth/logout',
    {
      config: { access: { actions: [] } },
      schema: { tags: ['auth'], summary: 'End the current session', response: { 204: Type.Null(), ...authErrors() } },
    },
    async (request, reply) => {
      await services.sessions.logout(actorOf(request).principal, { ip: request.ip, requestId: request.id });
      reply.clearCookie(sessionCookie, { path: '/' }).clearCookie(csrfCookie, { path: '/' });
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/auth/me',
    {
      config: { access: { actions: [] } },
      schema: { tags: ['auth'], summary: 'Who am I: the authenticated principal and its organizations', response: { 200: Me, ...authErrors() } },
    },
    async (request) => {
      const p = actorOf(request).principal;
      const userId = p.kind === 'device' ? undefined : p.userId;
      const user = userId ? await services.users.get(systemActor.principal, userId) : null;
      return {
        kind: p.kind,
        user,
        systemAdmin: p.kind === 'user' && p.systemAdmin,
        apiKeyId: p.kind === 'api_key' ? p.keyId : p.kind === 'device' ? p.keyId : null,
        deviceId: p.kind === 'device' ? p.deviceId : null,
        sessionId: p.kind === 'user' ? (p.sessionId ?? null) : null,
        organizations: await services.organizations.ofPrincipal(p),
      };
    },
  );
};
