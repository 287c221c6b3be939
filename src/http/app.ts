import { randomUUID } from 'node:crypto';
import Fastify, { type RouteOptions } from 'fastify';
import cookie from '@fastify/cookie';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Registry } from 'prom-client';
import type { Config } from '../config/keys.ts';
import { FleetError } from '../core/errors.ts';
import type { Hub } from '../hub/hub.ts';
import { requestLoggers, type Logger } from '../log.ts';
import type { Services } from '../services/index.ts';
import { accessPlugin } from './access.ts';
import { clientErrorHandler, sendError } from './errors.ts';
import { metricsPlugin } from './metrics.ts';
import { openapiPlugin } from './openapi.ts';
import { admissionRoutes } from './routes/admission.ts';
import { apiKeyRoutes } from './routes/api-keys.ts';
import { auditRoutes } from './routes/audit.ts';
import { actionRoutes } from './routes/actions.ts';
import { deviceSelfRoutes } from './routes/device-self.ts';
import { filePullRoutes } from './routes/file-pulls.ts';
import { shellSessionRoutes } from './routes/shell-sessions.ts';
import { deviceRoutes } from './routes/devices.ts';
import { groupRoutes } from './routes/groups.ts';
import { deploymentRoutes } from './routes/deployments.ts';
import { updateRoutes } from './routes/updates.ts';
import { packageRoutes } from './routes/packages.ts';
import { signingKeyRoutes } from './routes/signing-keys.ts';
import { resourceRoutes } from './routes/resources.ts';
import { rpcRoutes } from './routes/rpc.ts';
import { seriesRoutes } from './routes/series.ts';
import { rrduinoRoutes } from './routes/rrduino.ts';
import { authRoutes } from './routes/auth.ts';
import { checkinRoutes } from './routes/checkin.ts';
import { healthRoutes } from './routes/health.ts';
import { memberRoutes } from './routes/members.ts';
import { organizationRoutes } from './routes/organizations.ts';
import { userRoutes } from './routes/users.ts';
import { rdfmPlugin } from '../adapters/rdfm/plugin.ts';
import { rhizoPlugin } from '../adapters/rhizo/http/plugin.ts';
import { ErrorBody } from './schemas.ts';
import { validatorCompiler } from './validation.ts';
import { version } from '../version.ts';

export interface AppOptions {
  config: Config;
  services: Services;
  logger: Logger;
  /** Throws when the node should not receive traffic (shutting down, store unreachable). */
  ready: () => Promise<void>;
  /** The device hub, for the routes that reach devices (JSON-RPC, desired state). */
  hub: Hub;
  /** Where /metrics reads from; the hub registers its own metrics in the same one. */
  registry?: Registry;
  /** Sees every route as it is registered, before any other hook: how a test finds routes that declare no access. */
  onRoute?: (route: RouteOptions) => void;
}

const requestIdPattern = /^[\w.:-]{1,128}$/;

export type App = Awaited<ReturnType<typeof buildApp>>;

export async function buildApp({ config, services, hub, logger, ready, registry = new Registry(), onRoute }: AppOptions) {
  const app = Fastify({
    loggerInstance: logger,
    childLoggerFactory: requestLoggers(),
    bodyLimit: config.bodyLimit,
    trustProxy: config.trustProxy,
    requestIdHeader: false,
    // A caller's request id is kept (so logs line up across services) when it is sane.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && requestIdPattern.test(given) ? given : randomUUID();
    },
    routerOptions: { ignoreTrailingSlash: true },
    // Refusals made before routing (an over-long path parameter, a malformed URL, headers too large)
    // get the same error body as every other.
    frameworkErrors: (error, request, reply) => sendError(error, request, reply),
    clientErrorHandler,
  }).withTypeProvider<TypeBoxTypeProvider>();
  if (onRoute) app.addHook('onRoute', onRoute);

  app.setValidatorCompiler(validatorCompiler);
  // The API takes JSON only: a text body is refused (415) instead of reaching validation as a string.
  app.removeContentTypeParser('text/plain');
  app.addSchema(ErrorBody);
  app.setErrorHandler((error, request, reply) => sendError(error as Error, request, reply));
  app.setNotFoundHandler((request, reply) => sendError(new FleetError('not_found', `No route ${request.method} ${request.url.split('?')[0]}`), request, reply));
  // A callback hook, not an async one: it runs on every request, and a promise each is measurable.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });

  await app.register(cookie);
  await app.register(accessPlugin, { authenticator: services.authenticator });
  await app.register(metricsPlugin, { registry });
  await app.register(openapiPlugin, { version });
  await app.register(healthRoutes, { ready });
  await app.register(
    async (api) => {
      await api.register(authRoutes, { services, cookieSecure: config.cookieSecure });
      await api.register(organizationRoutes, { services });
      await api.register(memberRoutes, { services });
      await api.register(userRoutes, { services });
      await api.register(apiKeyRoutes, { services });
      await api.register(deviceRoutes, { services, hub });
      await api.register(admissionRoutes, { services });
      await api.register(checkinRoutes, { services });
      await api.register(groupRoutes, { services });
      await api.register(updateRoutes, { services, config });
      await api.register(deploymentRoutes, { services });
      await api.register(packageRoutes, { services, config });
      await api.register(signingKeyRoutes, { services });
      await api.register(resourceRoutes, { services });
      await api.register(seriesRoutes, { services });
      await api.register(rrduinoRoutes, { services });
      await api.register(auditRoutes, { services });
      await api.register(deviceSelfRoutes, { services });
      await api.register(actionRoutes, { services });
      await api.register(filePullRoutes, { services, hub });
      await api.register(shellSessionRoutes, { services });
      await api.register(rpcRoutes, { hub });
    },
    { prefix: '/api' },
  );
  await app.register(rhizoPlugin, { services, bodyLimit: config.bodyLimit });
  await app.register(rdfmPlugin, { services, config, events: hub.events, links: hub.links });
  return app;
}
