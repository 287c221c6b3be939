import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config/keys.ts';
import { toFleetError } from '../../http/errors.ts';
import type { Services } from '../../services/index.ts';
import { deviceAuthRoutes } from './device/auth.ts';
import { keepRawBody } from './device/body.ts';
import { deviceLogRoutes } from './device/logs.ts';
import { updateCheckRoutes } from './device/update-check.ts';
import { errorBody } from './wire.ts';

export interface RdfmOptions {
  services: Services;
  config: Config;
}

/**
 * RDFM's REST API (antmicro/rdfm's server) for its unchanged clients: RDFM's paths, bodies, statuses
 * and error body `{"error": "<message>"}`. The routes follow RDFM's contract rather than fleetd's,
 * so they stay out of the OpenAPI document. The device side is in `device/`; management routes go
 * next to it.
 */
export async function rdfmPlugin(app: FastifyInstance, options: RdfmOptions): Promise<void> {
  keepRawBody(app);
  app.setErrorHandler((error, request, reply) => {
    const fleet = toFleetError(error as Error);
    if (fleet.code === 'internal') request.log.error({ err: error }, 'RDFM request failed');
    else request.log.info({ code: fleet.code, message: fleet.message }, 'RDFM request refused');
    const message = fleet.code === 'validation_failed' ? `schema validation failed: ${fleet.message}` : fleet.code === 'internal' ? 'internal server error' : fleet.message;
    return reply.status(fleet.httpStatus).type('application/json').send(errorBody(message));
  });
  app.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, hide: true };
  });
  await app.register(deviceAuthRoutes, options);
  await app.register(updateCheckRoutes, options);
  await app.register(deviceLogRoutes, options);
}
