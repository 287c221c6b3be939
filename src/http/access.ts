import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { AccessDeclaration, Principal } from '../core/access.ts';
import { FleetError, unauthenticated } from '../core/errors.ts';
import type { Actor } from '../services/actor.ts';
import type { Authenticator } from '../services/authenticator.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; a route without a declaration answers 500, and a test fails for it. */
    access?: AccessDeclaration;
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

export const sessionCookie = 'fleetd_session';
export const csrfCookie = 'fleetd_csrf';

const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

export const accessPlugin = fp(async (app: FastifyInstance, options: { authenticator: Authenticator }) => {
  app.decorateRequest('principal', undefined);
  app.addHook('onRequest', async (request) => {
    if (request.is404) return;
    const access = request.routeOptions.config.access;
    if (access === undefined) throw new FleetError('internal', `Route ${request.routeOptions.url} declares no access`);
    if (access === 'public') return;
    const principal = await options.authenticator.authenticate({
      authorization: request.headers.authorization,
      sessionCookie: request.cookies[sessionCookie],
      csrfHeader: headerValue(request.headers['x-csrf-token']),
      unsafeMethod: !safeMethods.has(request.method),
      ip: request.ip,
    });
    if (!principal && access.anonymous) return;
    if (!principal) throw unauthenticated('Authentication required: send "Authorization: Bearer <token or API key>"');
    request.principal = principal;
  });
});

const headerValue = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** The principal of an authenticated route, with where the request came from, for the audit log. */
export function actorOf(request: FastifyRequest): Actor {
  if (!request.principal) throw unauthenticated();
  return { principal: request.principal, ip: request.ip, requestId: request.id };
}
