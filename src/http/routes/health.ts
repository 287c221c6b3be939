import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { errors } from '../schemas.ts';

const Status = Type.Object({ status: Type.String() });

/** Liveness (the process answers) and readiness (it can serve: store reachable, not shutting down). */
export const healthRoutes: FastifyPluginAsyncTypebox<{ ready: () => Promise<void> }> = async (app, { ready }) => {
  app.get('/healthz', { config: { access: 'public' }, schema: { tags: ['operations'], response: { 200: Status } } }, async () => ({ status: 'ok' }));

  app.get(
    '/readyz',
    { config: { access: 'public' }, schema: { tags: ['operations'], response: { 200: Status, ...errors(503) } } },
    async () => {
      await ready();
      return { status: 'ready' };
    },
  );
};
