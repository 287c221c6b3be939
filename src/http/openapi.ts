import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Type } from 'typebox';
import type { AccessDeclaration } from '../core/access.ts';

/**
 * The OpenAPI 3 document, built from the schemas declared with each route, at /api/openapi.json,
 * and browsable docs at /api/docs.
 */
export const openapiPlugin = fp(async (app: FastifyInstance, options: { version: string }) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'fleetd API', version: options.version, description: 'Device fleet server: identity and access, organizations, API keys, audit log.' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An access token from /api/auth/login, an API key (fk_...), or an external OIDC token' },
          session: { type: 'apiKey', in: 'cookie', name: 'fleetd_session', description: 'Browser session; non-GET requests also need the X-CSRF-Token header' },
        },
      },
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
    transform: ({ schema, url, route }) => {
      const access = (route.config as { access?: AccessDeclaration } | undefined)?.access;
      const transformed = { ...schema } as Record<string, unknown>;
      if (access && access !== 'public') {
        // An empty requirement is OpenAPI's way of saying the credentials are optional.
        transformed.security = [...(access.anonymous ? [{}] : []), { bearer: [] }, { session: [] }];
        if (access.actions.length > 0) transformed['x-fleetd-actions'] = access.actions;
      }
      return { schema: transformed as typeof schema, url };
    },
  });

  await app.register(async (docs) => {
    // The docs pages come from a plugin; they are public like the document they show.
    docs.addHook('onRoute', (route) => {
      route.config = { ...(route.config as object), access: 'public' };
    });
    await docs.register(swaggerUi, { routePrefix: '/api/docs' });
  });

  app.get('/api/openapi.json', { config: { access: 'public' }, schema: { hide: true, response: { 200: Type.Object({}, { additionalProperties: true }) } } }, async () => app.swagger());
});
