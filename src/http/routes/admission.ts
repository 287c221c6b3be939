import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { authErrors, Name, Nullable, Page, PageQuery, Timestamp } from '../schemas.ts';
import { Device, Tags } from './devices.ts';
import { OrgParams } from './organizations.ts';

const Id = Type.String({ minLength: 1, maxLength: 100 });
const PendingDevice = Type.Object({
  id: Type.String(),
  orgId: Nullable(Type.String({ description: 'Null: no organization was named; only system admins see it' })),
  endpoint: Type.String({ description: 'Where it connected: shelly, devices, relay or checkin' }),
  externalId: Type.String({ description: 'The id the device calls itself by' }),
  state: Type.Union([Type.Literal('pending'), Type.Literal('denied')]),
  info: Type.Object({}, { additionalProperties: true, description: 'What the device said of itself (name, model, firmware, metadata, hello)' }),
  keyFingerprint: Nullable(Type.String({ description: 'SHA256:<base64> of the key a checking-in device signs with; compare it with the device' })),
  remoteAddress: Nullable(Type.String()),
  attempts: Type.Integer({ description: 'How many times it asked' }),
  firstSeenAt: Timestamp,
  lastSeenAt: Timestamp,
  decidedBy: Nullable(Type.String()),
  decidedAt: Nullable(Timestamp),
});
const EnrollmentToken = Type.Object({
  id: Type.String(),
  orgId: Type.String(),
  name: Type.String(),
  prefix: Type.String({ description: 'The non-secret part of the token, fe_<prefix>_...' }),
  tags: Type.Array(Type.String(), { description: 'Tags every device it admits starts with' }),
  expiresAt: Nullable(Timestamp),
  maxUses: Nullable(Type.Integer({ description: 'How many devices it may admit; null for no limit' })),
  uses: Type.Integer(),
  createdBy: Type.String(),
  createdAt: Timestamp,
  revokedAt: Nullable(Timestamp),
});
const PendingParams = Type.Object({ ...OrgParams.properties, pendingId: Id });
const SystemPendingParams = Type.Object({ pendingId: Id });
const TokenParams = Type.Object({ ...OrgParams.properties, tokenId: Id });
const PendingQuery = Type.Object({ ...PageQuery, state: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('denied')])) }, { additionalProperties: false });
const AcceptBody = { name: Type.Optional(Name), tags: Type.Optional(Tags) };

/** The waiting room (devices asking to be admitted) and the enrollment tokens that admit devices without waiting. */
export const admissionRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { admission } = services;

  app.get(
    '/orgs/:orgId/pending-devices',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['admission'],
        summary: 'Devices waiting for admission in the organization, and those denied (admins)',
        description: 'A device waits here when its endpoint\'s admission policy is manual and it connected with `?org=<organization>`.',
        params: OrgParams,
        querystring: PendingQuery,
        response: { 200: Page(PendingDevice), ...authErrors(404) },
      },
    },
    async (request) => admission.listPending(actorOf(request).principal, request.params.orgId, request.query, request.query),
  );

  app.post(
    '/orgs/:orgId/pending-devices/:pendingId/accept',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['admission'],
        summary: 'Admit a waiting (or denied) device: it is registered, and a device still connected carries on (admins)',
        params: PendingParams,
        body: Type.Optional(Type.Object(AcceptBody, { additionalProperties: false })),
        response: { 201: Device, ...authErrors(404, 409, 413) },
      },
    },
    async (request, reply) => reply.status(201).send(await admission.accept(actorOf(request), request.params.pendingId, { ...request.body, org: request.params.orgId })),
  );

  app.post(
    '/orgs/:orgId/pending-devices/:pendingId/deny',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['admission'],
        summary: 'Refuse a waiting device; it stays refused until the denial is deleted (admins)',
        params: PendingParams,
        response: { 200: PendingDevice, ...authErrors(404, 409) },
      },
    },
    async (request) => admission.deny(actorOf(request), request.params.pendingId, { org: request.params.orgId }),
  );

  app.delete(
    '/orgs/:orgId/pending-devices/:pendingId',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: { tags: ['admission'], summary: 'Forget a denial, so that the device may ask again (admins)', params: PendingParams, response: { 204: Type.Null(), ...authErrors(404, 409) } },
    },
    async (request, reply) => {
      await admission.forget(actorOf(request), request.params.pendingId, { org: request.params.orgId });
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/pending-devices',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['admission'],
        summary: 'Devices waiting without an organization (system admins)',
        querystring: PendingQuery,
        response: { 200: Page(PendingDevice), ...authErrors() },
      },
    },
    async (request) => admission.listPending(actorOf(request).principal, undefined, request.query, request.query),
  );

  app.post(
    '/pending-devices/:pendingId/accept',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['admission'],
        summary: 'Admit a device waiting without an organization into one (system admins)',
        params: SystemPendingParams,
        body: Type.Object({ org: Type.String({ minLength: 1, maxLength: 100, description: 'Id or slug of the organization it joins' }), ...AcceptBody }, { additionalProperties: false }),
        response: { 201: Device, ...authErrors(404, 409, 413) },
      },
    },
    async (request, reply) => reply.status(201).send(await admission.accept(actorOf(request), request.params.pendingId, request.body)),
  );

  app.post(
    '/pending-devices/:pendingId/deny',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: { tags: ['admission'], summary: 'Refuse a device waiting without an organization (system admins)', params: SystemPendingParams, response: { 200: PendingDevice, ...authErrors(404, 409) } },
    },
    async (request) => admission.deny(actorOf(request), request.params.pendingId),
  );

  app.delete(
    '/pending-devices/:pendingId',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: { tags: ['admission'], summary: 'Forget the denial of a device without an organization (system admins)', params: SystemPendingParams, response: { 204: Type.Null(), ...authErrors(404, 409) } },
    },
    async (request, reply) => {
      await admission.forget(actorOf(request), request.params.pendingId);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/orgs/:orgId/enrollment-tokens',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['admission'],
        summary: "The organization's enrollment tokens, never their secrets (admins)",
        params: OrgParams,
        querystring: Type.Object({ ...PageQuery, revoked: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
        response: { 200: Page(EnrollmentToken), ...authErrors(404) },
      },
    },
    async (request) => admission.listTokens(actorOf(request).principal, request.params.orgId, request.query, request.query),
  );

  app.post(
    '/orgs/:orgId/enrollment-tokens',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: {
        tags: ['admission'],
        summary: 'Create an enrollment token; the secret is in this response only (admins)',
        description:
          'A device that presents the token (`?token=fe_...` on its URL) is admitted into this organization at once, with the token\'s tags, whatever the admission policy. `maxUses` counts the devices it admits.',
        params: OrgParams,
        body: Type.Object(
          { name: Name, tags: Type.Optional(Tags), expiresAt: Type.Optional(Timestamp), maxUses: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000000 })) },
          { additionalProperties: false },
        ),
        response: { 201: Type.Object({ ...EnrollmentToken.properties, token: Type.String({ description: 'The whole token; shown once' }) }), ...authErrors(404) },
      },
    },
    async (request, reply) => reply.status(201).send(await admission.createToken(actorOf(request), request.params.orgId, request.body)),
  );

  app.delete(
    '/orgs/:orgId/enrollment-tokens/:tokenId',
    {
      config: { access: { actions: ['device.manage'] } },
      schema: { tags: ['admission'], summary: 'Revoke an enrollment token; devices it admitted stay (admins)', params: TokenParams, response: { 200: EnrollmentToken, ...authErrors(404) } },
    },
    async (request) => admission.revokeToken(actorOf(request), request.params.orgId, request.params.tokenId),
  );
};
