import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { StateDocument } from '../../core/device-state.ts';
import { forbidden } from '../../core/errors.ts';
import type { Services } from '../../services/index.ts';
import { errors } from '../schemas.ts';
import { ExternalId } from './devices.ts';

const CheckinBody = Type.Object(
  {
    deviceId: ExternalId,
    publicKey: Type.String({ minLength: 1, maxLength: 4096, description: 'PEM public key (-----BEGIN PUBLIC KEY-----): Ed25519, or RSA of 2048 to 8192 bits' }),
    timestamp: Type.Integer({ minimum: 0, maximum: 8640000000000000, description: 'When the device signed, in milliseconds since the epoch' }),
    metadata: Type.Optional(Type.Object({}, { additionalProperties: true, maxProperties: 100, description: 'What the device says of itself; shown while it waits, and its metadata once admitted' })),
  },
  { additionalProperties: false },
);

/** The bytes each check-in's signature covers: the body exactly as it arrived, before parsing. */
const rawBodies = new WeakMap<FastifyRequest, Buffer>();

/**
 * Signed check-in, for devices that prove themselves with a key pair (as RDFM devices do): the device
 * signs its request body, and a device whose key is known gets a short-lived access token.
 */
export const checkinRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  // This plugin's own JSON parser keeps the raw body; every other route keeps Fastify's.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    rawBodies.set(request, body as Buffer);
    parseJson(request, (body as Buffer).toString('utf8'), done);
  });

  app.post(
    '/devices/checkin',
    {
      config: { access: 'public' },
      schema: {
        tags: ['admission'],
        summary: 'A device checks in with a signed body; a known device gets an access token',
        description:
          'The `X-Fleetd-Signature` header carries the base64 signature of the raw body bytes: Ed25519, or RSASSA-PKCS1-v1_5 with SHA-256. ' +
          'The timestamp must be within `checkinWindow` seconds of the server clock and newer than the last check-in accepted. ' +
          'A device whose key is known gets 200 with an access token acting as the device (send it as "Authorization: Bearer ..."); ' +
          'an unknown one is admitted by the `checkin` endpoint\'s policy (`?org=` names the organization it asks to join): 202 while it waits for an admin, 403 when denied.',
        headers: Type.Object({ 'x-fleetd-signature': Type.Optional(Type.String({ maxLength: 2048 })) }),
        querystring: Type.Object({ org: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'The organization whose admins see the device while it waits' })) }, { additionalProperties: false }),
        body: CheckinBody,
        response: {
          200: Type.Object({
            deviceId: Type.String({ description: "The device's fleetd id" }),
            orgId: Type.String(),
            accessToken: Type.String(),
            expiresIn: Type.Integer({ description: 'Seconds until the access token expires; check in again before' }),
          }),
          202: Type.Object({ status: Type.Literal('pending') }),
          ...errors(401, 403, 413, 415),
        },
      },
    },
    async (request, reply) => {
      const decision = await services.admission.checkin({
        raw: rawBodies.get(request)!,
        body: { ...request.body, metadata: request.body.metadata as StateDocument | undefined },
        signature: request.headers['x-fleetd-signature'],
        orgHint: request.query.org,
        remoteAddress: request.ip,
      });
      if (decision.status === 'pending') return reply.status(202).send({ status: 'pending' as const });
      if (decision.status === 'denied') throw forbidden(decision.reason);
      const token = await services.sessions.deviceAccessToken(decision.device);
      return { deviceId: decision.device.id, orgId: decision.device.orgId, ...token };
    },
  );
};
