import type { FastifyInstance } from 'fastify';
import { baseUrlOf } from '../../../http/base-url.ts';
import { callingDevice } from '../../../http/routes/device-self.ts';
import type { RdfmRouteOptions } from '../plugin.ts';
import { MetadataDocument, metadataKeys, rfc822, type RdfmMetadata } from '../wire.ts';
import { bodyValidator } from '../validation.ts';
import { jsonBody } from './body.ts';

const validateCheck = bodyValidator<RdfmMetadata>(MetadataDocument);

/** The device's flat facts as fleetd's resolver takes them: string values only (tags are lists). */
function factsOf(metadata: RdfmMetadata) {
  const flat = Object.fromEntries(Object.entries(metadata).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  return { version: String(metadata[metadataKeys.version]), deviceType: String(metadata[metadataKeys.deviceType]), metadata: flat };
}

/**
 * `POST /api/v1/update/check` with the device's token and its flat metadata: fleetd's update check
 * (group policy, deployments, RDFM's resolver), answered as RDFM does: 200 with the package's integer
 * id, its creation time, SHA-256 and a download link, or 204.
 */
export async function updateCheckRoutes(app: FastifyInstance, { services, config, ids }: RdfmRouteOptions): Promise<void> {
  app.post('/api/v1/update/check', { logLevel: 'warn', config: { access: { actions: ['device.report'] } } }, async (request, reply) => {
    const device = callingDevice(request);
    const metadata = validateCheck(jsonBody(request));
    const offer = await services.updates.check(device, factsOf(metadata), baseUrlOf(request.raw, config));
    if (!offer) return reply.status(204).send();
    return { id: await ids.number('package', offer.packageId), created: rfc822(offer.packageCreatedAt), sha256: offer.sha256, uri: offer.url };
  });
}
