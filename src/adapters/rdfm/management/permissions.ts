import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorize } from '../../../core/access.ts';
import { badRequest, notFound } from '../../../core/errors.ts';
import type { RdfmRouteOptions } from '../plugin.ts';
import { managementOf } from './context.ts';

const byRole = "fleetd grants access by role in the organization (viewer reads, operator runs actions, admin manages and opens shells), not by permission rows: make the user a member with the right role";

/**
 * RDFM's `/api/v1/permissions` (`rdfm-mgmt permissions list|create|delete`). fleetd has no
 * permission rows: what a user may do follows from its role in the organization (members, fleetd's
 * `/api/orgs/{org}/members`). So the list is empty, no row can be created or deleted (400, saying
 * why), and no id names one (404). Any valid token reads; writes are for admins, as RDFM's rw scope.
 */
export async function permissionRoutes(app: FastifyInstance, options: RdfmRouteOptions): Promise<void> {
  /** RDFM's rw scope: admins of the organization (403 below). */
  const requireAdmin = async (request: FastifyRequest) => {
    const { actor, org } = await managementOf(request, options);
    authorize(actor.principal, 'device.manage', { orgId: org.id });
  };

  app.get('/api/v1/permissions', { config: { access: { actions: ['device.read'] } } }, async (request) => {
    await managementOf(request, options);
    return [];
  });

  app.get<{ Params: { id: string } }>('/api/v1/permissions/:id', { config: { access: { actions: ['device.manage'] } } }, async (request) => {
    await requireAdmin(request);
    throw notFound('Permission');
  });

  app.post('/api/v1/permissions', { config: { access: { actions: ['device.manage'] } } }, async (request) => {
    await requireAdmin(request);
    throw badRequest(byRole);
  });

  app.delete<{ Params: { id: string } }>('/api/v1/permissions/:id', { config: { access: { actions: ['device.manage'] } } }, async (request) => {
    await requireAdmin(request);
    throw badRequest(byRole);
  });
}
