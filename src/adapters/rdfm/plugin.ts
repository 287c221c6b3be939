import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config/keys.ts';
import type { DeviceLinks } from '../../hub/device-links.ts';
import type { EventStream } from '../../hub/events.ts';
import { toFleetError } from '../../http/errors.ts';
import type { Services } from '../../services/index.ts';
import { deviceAuthRoutes } from './device/auth.ts';
import { keepRawBody } from './device/body.ts';
import { deviceLogRoutes } from './device/logs.ts';
import { multipartPartRoutes } from './device/multipart-parts.ts';
import { updateCheckRoutes } from './device/update-check.ts';
import { RdfmIds } from './ids.ts';
import { registrationRoutes } from './management/registrations.ts';
import { deviceRoutes } from './management/devices.ts';
import { logRoutes } from './management/logs.ts';
import { packageRoutes } from './management/packages.ts';
import { groupRoutes } from './management/groups.ts';
import { actionRoutes } from './management/actions.ts';
import { fsFileRoutes } from './management/fs-file.ts';
import { permissionRoutes } from './management/permissions.ts';
import { streamRoutes } from './management/stream.ts';
import { errorBody } from './wire.ts';

export interface RdfmOptions {
  services: Services;
  config: Config;
  /** The hub's events of every node, for RDFM's SSE stream. */
  events: Pick<EventStream, 'listen'>;
  /** The hub's device links, to ask a device for a file. */
  links: Pick<DeviceLinks, 'call'>;
}

/** What every RDFM route plugin is given: the services, the configuration, the hub's events and links, and RDFM's integer ids. */
export interface RdfmRouteOptions extends RdfmOptions {
  ids: RdfmIds;
}

/**
 * RDFM's REST API (antmicro/rdfm's server) for its unchanged clients: RDFM's paths, bodies, statuses
 * and error body `{"error": "<message>"}`. The routes follow RDFM's contract rather than fleetd's,
 * so they stay out of the OpenAPI document. What devices call is in `device/`, what rdfm-mgmt
 * calls in `management/`.
 */
export async function rdfmPlugin(app: FastifyInstance, options: RdfmOptions): Promise<void> {
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
  const routeOptions: RdfmRouteOptions = { ...options, ids: new RdfmIds(options.services.store.db) };
  await app.register(async (device) => {
    keepRawBody(device);
    await device.register(deviceAuthRoutes, routeOptions);
    await device.register(updateCheckRoutes, routeOptions);
    await device.register(deviceLogRoutes, routeOptions);
  });
  await app.register(multipartPartRoutes, routeOptions);
  // What rdfm-mgmt calls, with fleetd's users and API keys (management/context.ts).
  await app.register(async (management) => {
    await management.register(registrationRoutes, routeOptions);
    await management.register(deviceRoutes, routeOptions);
    await management.register(logRoutes, routeOptions);
    await management.register(packageRoutes, routeOptions);
    await management.register(groupRoutes, routeOptions);
    await management.register(actionRoutes, routeOptions);
    await management.register(fsFileRoutes, routeOptions);
    await management.register(permissionRoutes, routeOptions);
    await management.register(streamRoutes, routeOptions);
  });
}
