import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Config } from '../../config/keys.ts';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { baseUrlOf } from '../base-url.ts';
import { authErrors, Nullable, Timestamp } from '../schemas.ts';
import { callingDevice } from './device-self.ts';
import { OrgParams } from './organizations.ts';

const Text = Type.String({ minLength: 1, maxLength: 200 });
const UpdateStatus = Type.Union([Type.Literal('pending'), Type.Literal('downloading'), Type.Literal('installing'), Type.Literal('success'), Type.Literal('failure')]);
const Offer = Type.Object({
  packageId: Type.String(),
  version: Type.String(),
  size: Type.Integer({ description: 'Bytes' }),
  sha256: Type.String({ description: 'Hex SHA-256 of the content: check it before installing' }),
  signature: Nullable(Type.String({ description: "Base64 Ed25519 signature over the 32 bytes of the SHA-256, by one of the organization's signing keys" })),
  url: Type.String({ description: 'Downloads the package without credentials until expiresAt (HTTP Range to resume)' }),
  expiresAt: Timestamp,
  deploymentId: Nullable(Type.String({ description: "The deployment it belongs to; null when the group's policy asked for it" })),
});
const DeviceUpdate = Type.Object({
  deviceId: Type.String(),
  packageId: Type.String(),
  targetVersion: Type.String(),
  deploymentId: Nullable(Type.String()),
  status: UpdateStatus,
  progress: Nullable(Type.Integer()),
  reason: Nullable(Type.String()),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

/** The update check and progress reports of devices (`self` is the caller), and what operators see of them. */
export const updateRoutes: FastifyPluginAsyncTypebox<{ services: Services; config: Config }> = async (app, { services, config }) => {
  const { updates } = services;

  app.post(
    '/devices/self/update-check',
    {
      // Every device polls here: two log lines a poll would cost more than the answer. /metrics counts them.
      logLevel: 'warn',
      config: { access: { actions: ['device.report'] } },
      schema: {
        tags: ['updates'],
        summary: 'A device asks what to install next: 200 with the package and a download link, or 204 for nothing',
        description:
          "The target is a running deployment's (inside its maintenance window) or the device's effective group's policy; the package is chosen by RDFM's resolver over the group's package set (or every package of the device type): the first hop of the shortest path from the version the device runs. `requires:<key>` conditions of a package are tested against `metadata`, `version` and `deviceType` (also known as rdfm.software.version and rdfm.hardware.devtype).",
        body: Type.Object(
          {
            version: Text,
            deviceType: Text,
            metadata: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 200 }), Type.String({ maxLength: 1000 }), { maxProperties: 100, description: 'Flat string facts, such as rdfm.software.supports_xdelta' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Offer, 204: Type.Null(), ...authErrors(404) },
      },
    },
    async (request, reply) => {
      const offer = await updates.check(callingDevice(request), request.body, baseUrlOf(request.raw, config));
      return offer ? offer : reply.status(204).send(null);
    },
  );

  app.post(
    '/devices/self/update-status',
    {
      config: { access: { actions: ['device.report'] } },
      schema: {
        tags: ['updates'],
        summary: 'A device reports progress on the update it was offered; success with version records the version it runs',
        body: Type.Object(
          {
            status: Type.Union([Type.Literal('downloading'), Type.Literal('installing'), Type.Literal('success'), Type.Literal('failure')]),
            progress: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'Percent' })),
            reason: Type.Optional(Type.String({ maxLength: 1000, description: 'Why it failed' })),
            version: Type.Optional(Text),
          },
          { additionalProperties: false },
        ),
        response: { 204: Type.Null(), ...authErrors(409) },
      },
    },
    async (request, reply) => {
      await updates.report(callingDevice(request), request.body);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/orgs/:orgId/devices/:deviceId/update',
    {
      config: { access: { actions: ['device.read'] } },
      schema: {
        tags: ['updates'],
        summary: 'The update a device was last offered and how far it got (members, or the device itself)',
        params: Type.Object({ ...OrgParams.properties, deviceId: Type.String({ minLength: 1, maxLength: 100 }) }),
        response: { 200: DeviceUpdate, ...authErrors(404) },
      },
    },
    async (request) => updates.statusOf(actorOf(request).principal, request.params.orgId, request.params.deviceId),
  );
};
