import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { badRequest, FleetError, unauthenticated } from '../../../core/errors.ts';
import { parseCheckinKey, verifyCheckinSignature, type CheckinKey } from '../../../services/admission/checkin.ts';
import type { RdfmOptions } from '../plugin.ts';
import { errorBody, MetadataDocument, metadataKeys, type RdfmMetadata } from '../wire.ts';
import { bodyValidator } from '../validation.ts';
import { jsonBody, rawBody } from './body.ts';

const AuthBody = Type.Object({
  metadata: MetadataDocument,
  public_key: Type.String({ minLength: 1, maxLength: 4096 }),
  timestamp: Type.Integer({ minimum: 0, maximum: 8640000000000 }),
});
const validateAuth = bodyValidator<{ metadata: RdfmMetadata; public_key: string; timestamp: number }>(AuthBody);

const signatureFailed = () => badRequest('signature verification failed');

/** RDFM checks the signature with the key the body names, before anything else of the body. */
function verifiedKey(raw: Buffer, signature: string): CheckinKey {
  let publicKey: unknown;
  try {
    publicKey = (JSON.parse(raw.toString('utf8')) as { public_key?: unknown } | null)?.public_key;
  } catch {
    throw signatureFailed();
  }
  if (typeof publicKey !== 'string') throw signatureFailed();
  try {
    const key = parseCheckinKey(publicKey);
    verifyCheckinSignature(key.key, raw, signature);
    return key;
  } catch (error) {
    if (error instanceof FleetError) throw signatureFailed();
    throw error;
  }
}

const text = (value: string | string[] | undefined) => (typeof value === 'string' ? value : undefined);

/**
 * `POST /api/v1/auth/device`: a device signs its body with its RSA key. Its id is its MAC address
 * (fleetd's externalId); a known device with the same key gets fleetd's device access token, and its
 * metadata becomes what it sent; any other waits in fleetd's waiting room (endpoint `rdfm`) and is
 * told 401, as RDFM's pending registrations are. Unlike RDFM, the timestamp must be within
 * `checkinWindow` of the server clock and newer than the last one accepted (replay protection).
 */
export async function deviceAuthRoutes(app: FastifyInstance, { services, config }: RdfmOptions): Promise<void> {
  app.post('/api/v1/auth/device', { config: { access: 'public' } }, async (request, reply) => {
    const signature = request.headers['x-rdfm-device-signature'];
    if (typeof signature !== 'string' || signature === '') throw badRequest('missing device signature header');
    const raw = rawBody(request);
    const key = verifiedKey(raw, signature);
    const body = validateAuth(jsonBody(request));
    const { metadata } = body;
    const decision = await services.admission
      .admitSigned({
        endpoint: 'rdfm',
        externalId: String(metadata[metadataKeys.macAddress]),
        publicKey: key.pem,
        timestamp: body.timestamp * 1000,
        info: { name: text(metadata[metadataKeys.macAddress]), model: text(metadata[metadataKeys.deviceType]), firmware: text(metadata[metadataKeys.version]), metadata },
        replaceInfo: true,
        remoteAddress: request.ip,
        ...(config.rdfmOrg !== '' && { orgHint: config.rdfmOrg }),
      })
      .catch((error: unknown) => {
        // A stale or replayed timestamp is an authorization failure to RDFM's client, which signs again.
        if (error instanceof FleetError && error.code === 'unauthenticated') throw unauthenticated('device unauthorized');
        throw error;
      });
    if (decision.status !== 'accepted') return reply.status(401).send(errorBody('device unauthorized'));
    const token = await services.sessions.deviceAccessToken(decision.device);
    return { token: token.accessToken, expires: token.expiresIn };
  });
}
