import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { authorize } from '../../core/access.ts';
import { listAudit } from '../../services/audit.ts';
import type { Services } from '../../services/index.ts';
import { actorOf } from '../access.ts';
import { authErrors, Nullable, Page, PageQuery, Timestamp } from '../schemas.ts';
import { OrgParams } from './organizations.ts';

const Ref = Type.Object({ type: Type.String(), id: Type.String() });
const AuditEvent = Type.Object({
  id: Type.String(),
  orgId: Nullable(Type.String()),
  actor: Ref,
  action: Type.String(),
  target: Ref,
  details: Nullable(Type.Object({}, { additionalProperties: true })),
  ip: Nullable(Type.String()),
  requestId: Nullable(Type.String()),
  at: Timestamp,
});
const AuditQuery = {
  ...PageQuery,
  action: Type.Optional(Type.String({ maxLength: 100, description: 'Such as member.add or api_key.revoke' })),
  actorId: Type.Optional(Type.String({ maxLength: 100 })),
  targetType: Type.Optional(Type.String({ maxLength: 100 })),
  targetId: Type.Optional(Type.String({ maxLength: 100 })),
  since: Type.Optional(Timestamp),
  until: Type.Optional(Timestamp),
};

export const auditRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async (app, { services }) => {
  app.get(
    '/orgs/:orgId/audit',
    {
      config: { access: { actions: ['audit.read'] } },
      schema: {
        tags: ['audit'],
        summary: "The organization's audit log, oldest first (admins)",
        params: OrgParams,
        querystring: Type.Object(AuditQuery, { additionalProperties: false }),
        response: { 200: Page(AuditEvent), ...authErrors(404) },
      },
    },
    async (request) => {
      const principal = actorOf(request).principal;
      const org = await services.organizations.get(principal, request.params.orgId);
      authorize(principal, 'audit.read', { orgId: org.id });
      return listAudit(services.store.db, { ...request.query, orgId: org.id }, request.query);
    },
  );

  app.get(
    '/audit',
    {
      config: { access: { actions: ['system.audit.read'] } },
      schema: {
        tags: ['audit'],
        summary: 'The whole audit log, users and logins included (system admins)',
        querystring: Type.Object({ ...AuditQuery, orgId: Type.Optional(Type.String({ maxLength: 100 })) }, { additionalProperties: false }),
        response: { 200: Page(AuditEvent), ...authErrors() },
      },
    },
    async (request) => {
      authorize(actorOf(request).principal, 'system.audit.read');
      return listAudit(services.store.db, request.query, request.query);
    },
  );
};
