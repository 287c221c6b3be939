import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { authErrors, Name, Nullable, Page, PageQuery, Timestamp } from '../schemas.ts';
import { OrgParams } from './organizations.ts';

const SigningKey = Type.Object({
  id: Type.String(),
  orgId: Type.String(),
  name: Type.String(),
  publicKey: Type.String({ description: 'PEM SubjectPublicKeyInfo (Ed25519)' }),
  fingerprint: Type.String({ description: 'SHA256:<base64> of the DER key' }),
  createdBy: Type.String(),
  createdAt: Timestamp,
  revokedAt: Nullable(Timestamp),
});
const KeyParams = Type.Object({ ...OrgParams.properties, signingKeyId: Type.String({ minLength: 1, maxLength: 100 }) });

/** The Ed25519 keys an organization's packages are signed with. */
export const signingKeyRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  const { packages } = services;

  app.get(
    '/orgs/:orgId/signing-keys',
    {
      config: { access: { actions: ['package.read'] } },
      schema: {
        tags: ['packages'],
        summary: "List the organization's package signing keys, revoked ones included",
        params: OrgParams,
        querystring: Type.Object(PageQuery, { additionalProperties: false }),
        response: { 200: Page(SigningKey), ...authErrors(404) },
      },
    },
    async (request) => packages.listSigningKeys(actorOf(request).principal, request.params.orgId, request.query),
  );

  app.post(
    '/orgs/:orgId/signing-keys',
    {
      config: { access: { actions: ['package.manage'] } },
      schema: {
        tags: ['packages'],
        summary: 'Add a package signing key (admins)',
        description: 'Signed uploads are verified against the active keys. The same key twice, or more than 50 active keys, is refused (409).',
        params: OrgParams,
        body: Type.Object({ name: Name, publicKey: Type.String({ minLength: 1, maxLength: 4096, description: 'PEM Ed25519 public key (-----BEGIN PUBLIC KEY-----)' }) }, { additionalProperties: false }),
        response: { 201: SigningKey, ...authErrors(404, 409) },
      },
    },
    async (request, reply) => reply.status(201).send(await packages.addSigningKey(actorOf(request), request.params.orgId, request.body)),
  );

  app.delete(
    '/orgs/:orgId/signing-keys/:signingKeyId',
    {
      config: { access: { actions: ['package.manage'] } },
      schema: {
        tags: ['packages'],
        summary: 'Revoke a package signing key (admins)',
        description: 'It verifies no new upload; packages it verified keep their signature. Revoking a revoked key changes nothing.',
        params: KeyParams,
        response: { 204: Type.Null(), ...authErrors(404) },
      },
    },
    async (request, reply) => {
      await packages.revokeSigningKey(actorOf(request), request.params.orgId, request.params.signingKeyId);
      return reply.status(204).send(null);
    },
  );
};
