import type { FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import multipart from '@fastify/multipart';
import { badRequest } from '../../../core/errors.ts';
import type { Services } from '../../../services/index.ts';
import { bulkUpdateRoutes } from './bulk-update.ts';
import { parseForm } from './forms.ts';
import { keyRoutes } from './keys.ts';
import { messageRoutes } from './messages.ts';
import { organizationRoutes } from './organizations.ts';
import { pinRoutes } from './pins.ts';
import { resourceRoutes } from './resources.ts';
import { userRoutes } from './users.ts';

export interface RhizoOptions {
  services: Services;
  /** Largest body (form or multipart file) accepted, as for the rest of the API. */
  bodyLimit: number;
}

/**
 * rhizo-server's REST API under /api/v1, for rhizo's unchanged clients: form-encoded parameters,
 * Basic authentication with a key, rhizo's statuses and bodies (errors keep fleetd's body). The
 * routes follow rhizo-server's contract rather than fleetd's, so they stay out of the OpenAPI document.
 */
export async function rhizoPlugin(app: FastifyInstance, options: RhizoOptions): Promise<void> {
  // The body parsers are registered here only, so that the rest of the API keeps taking JSON alone.
  // Decoded strictly (forms.ts): a malformed escape is a 400, not a value kept as typed.
  await app.register(formbody, { parser: (text: string) => Object.fromEntries(parseForm(text)), bodyLimit: options.bodyLimit });
  await app.register(multipart, { limits: { fileSize: options.bodyLimit } });
  // rhizo never read JSON bodies: a body of any other kind is a malformed request here.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('*', (_request, _payload, done) => done(badRequest('rhizo requests are application/x-www-form-urlencoded or multipart/form-data'), undefined));
  app.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, hide: true };
  });

  await app.register(resourceRoutes, options);
  await app.register(bulkUpdateRoutes, options);
  await app.register(keyRoutes, options);
  await app.register(pinRoutes, options);
  await app.register(organizationRoutes, options);
  await app.register(userRoutes, options);
  await app.register(messageRoutes, options);
}
