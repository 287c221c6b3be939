import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { notFound } from '../../../core/errors.ts';
import type { StateDocument } from '../../../core/device-state.ts';
import type { RdfmRouteOptions } from '../plugin.ts';
import { bodyValidator } from '../validation.ts';
import { rfc822 } from '../wire.ts';
import { managementOf } from './context.ts';
import { isTag, maxTags } from './device-tags.ts';
import { findRegistration, rdfmRegistrations } from './registration-list.ts';

const RegistrationBody = Type.Object({
  mac_address: Type.String({ minLength: 1, maxLength: 128 }),
  public_key: Type.String({ minLength: 1, maxLength: 4096 }),
});
const validateRegistration = bodyValidator<{ mac_address: string; public_key: string }>(RegistrationBody);

const noRegistration = () => notFound('Registration');

/** The tags a device asks for (`rdfm.software.tags`), those fleetd's tag rules allow: RDFM starts a registered device with them. */
function requestedTags(metadata: StateDocument | undefined): string[] {
  const tags = metadata?.['rdfm.software.tags'];
  if (!Array.isArray(tags)) return [];
  const allowed = [...new Set(tags.filter((tag): tag is string => typeof tag === 'string' && isTag(tag)))];
  return allowed.slice(0, maxTags);
}

/**
 * RDFM's pending registrations are fleetd's waiting room (devices of endpoint `rdfm`), decided with
 * fleetd's admission: registering accepts the device into the organization RDFM's API stands for,
 * deleting drops the entry so that the device asks anew. Key rotation (a registered MAC asking with
 * another key) is not one: fleetd keeps such a device out of the waiting room, so there is no
 * registration to accept.
 */
export async function registrationRoutes(app: FastifyInstance, options: RdfmRouteOptions): Promise<void> {
  const { services } = options;

  // fleetd's waiting room is for admins: listing it asks for device.manage, where RDFM asks for its read-only scope.
  app.get('/api/v1/auth/pending', { config: { access: { actions: ['device.manage'] } } }, async (request) => {
    const { actor, org } = await managementOf(request, options);
    const registrations = await rdfmRegistrations(services, actor.principal, org.id, true);
    return registrations.map(({ entry, publicKey }) => ({
      mac_address: entry.externalId,
      public_key: publicKey,
      last_appeared: rfc822(entry.lastSeenAt),
      metadata: entry.info.metadata ?? {},
    }));
  });

  app.post('/api/v1/auth/register', { config: { access: { actions: ['device.manage'] } } }, async (request) => {
    const { actor, org } = await managementOf(request, options);
    const body = validateRegistration(request.body);
    const registration = await findRegistration(services, actor.principal, org.id, body.mac_address, body.public_key);
    if (!registration) throw noRegistration();
    await services.admission.accept(actor, registration.entry.id, { org: org.id, tags: requestedTags(registration.entry.info.metadata) });
    return {};
  });

  app.delete('/api/v1/auth/pending', { config: { access: { actions: ['device.manage'] } } }, async (request) => {
    const { actor, org } = await managementOf(request, options);
    const body = validateRegistration(request.body);
    const registration = await findRegistration(services, actor.principal, org.id, body.mac_address, body.public_key);
    if (!registration) throw noRegistration();
    // fleetd forgets only denials: a waiting device is denied first, then forgotten, and may ask again.
    if (registration.entry.state === 'pending') await services.admission.deny(actor, registration.entry.id);
    await services.admission.forget(actor, registration.entry.id);
    return {};
  });
}
