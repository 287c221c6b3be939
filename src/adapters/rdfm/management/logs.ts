import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorize, type Action } from '../../../core/access.ts';
import { badRequest, notFound } from '../../../core/errors.ts';
import type { RdfmRouteOptions } from '../plugin.ts';
import { parseRfc822 } from '../wire.ts';
import { fleetdIdOf, managementOf, type Management } from './context.ts';
import { rdfmLogs } from './log-json.ts';
import { LogStore, type LogSelection } from './log-store.ts';

type LogRequest = FastifyRequest<{ Params: { id: string }; Querystring: Record<string, unknown> }>;

const maxNameLength = 200;

/** One text parameter of the query, if given; 400 for anything else (a repeated one arrives as a list). */
function textParameter(query: Record<string, unknown>, key: string): string | undefined {
  const value = query[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badRequest(`${key} must be given once, as text`);
  return value;
}

/** `since`, `to` (RFC 822) and `name` of RDFM's log routes. */
function filterOf(query: Record<string, unknown>): Omit<LogSelection, 'deviceIds'> {
  const since = textParameter(query, 'since');
  const to = textParameter(query, 'to');
  const name = textParameter(query, 'name');
  if (name !== undefined && name.length > maxNameLength) throw badRequest(`name is longer than ${maxNameLength} characters`);
  return {
    ...(since !== undefined && { since: parseRfc822(since, 'since') }),
    ...(to !== undefined && { to: parseRfc822(to, 'to') }),
    ...(name !== undefined && name !== '' && { name }),
  };
}

/**
 * RDFM's device logs (§9) of the organization its API stands for: of a device, of a group's devices,
 * or one log by its RDFM integer; listed (viewers) or deleted (admins). There is no logs service:
 * the caller is authorized here, and every query is held to the organization.
 */
export async function logRoutes(app: FastifyInstance, options: RdfmRouteOptions): Promise<void> {
  const { services } = options;
  const logs = new LogStore(services.store.db);

  async function authorized(request: LogRequest, action: Action): Promise<Management> {
    const management = await managementOf(request, options);
    authorize(management.actor.principal, action, { orgId: management.org.id });
    return management;
  }

  /** The logs a device or group route names: its device, or its group's members now. */
  async function selection(request: LogRequest, action: Action, scope: 'device' | 'group'): Promise<{ orgId: string; selection: LogSelection }> {
    const filter = filterOf(request.query);
    const { actor, org } = await authorized(request, action);
    const id = await fleetdIdOf(options, scope, request.params.id, scope === 'device' ? 'Device' : 'Group');
    if (scope === 'device') {
      const device = await services.devices.get(actor.principal, org.id, id);
      return { orgId: org.id, selection: { deviceIds: [device.id], ...filter } };
    }
    const group = await services.groups.get(actor.principal, org.id, id);
    return { orgId: org.id, selection: { deviceIds: await services.groups.memberIds(org.id, group.id), ...filter } };
  }

  for (const scope of ['device', 'group'] as const) {
    app.get(`/api/v1/logs/${scope}/:id`, { config: { access: { actions: ['device.read'] } } }, async (request: LogRequest) => {
      const { orgId, selection: selected } = await selection(request, 'device.read', scope);
      return rdfmLogs(options, await logs.list(orgId, selected));
    });

    app.delete(`/api/v1/logs/${scope}/:id`, { config: { access: { actions: ['device.manage'] } } }, async (request: LogRequest) => {
      const { orgId, selection: selected } = await selection(request, 'device.manage', scope);
      await logs.delete(orgId, selected);
      return {};
    });
  }

  app.get('/api/v1/logs/:id', { config: { access: { actions: ['device.read'] } } }, async (request: LogRequest) => {
    const { org } = await authorized(request, 'device.read');
    const row = await logs.get(org.id, await fleetdIdOf(options, 'log', request.params.id, 'Log'));
    if (!row) throw notFound('Log');
    const [log] = await rdfmLogs(options, [row]);
    return log;
  });

  app.delete('/api/v1/logs/:id', { config: { access: { actions: ['device.manage'] } } }, async (request: LogRequest) => {
    const { org } = await authorized(request, 'device.manage');
    if (!(await logs.deleteOne(org.id, await fleetdIdOf(options, 'log', request.params.id, 'Log')))) throw notFound('Log');
    return {};
  });
}
