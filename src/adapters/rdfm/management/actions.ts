import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { RdfmRouteOptions } from '../plugin.ts';
import { bodyValidator } from '../validation.ts';
import { managementOf } from './context.ts';
import { deviceByMac } from './action-device.ts';
import { execAction, rdfmResultWithinMs } from './action-exec.ts';
import { rdfmAction, rdfmActionLog } from './action-json.ts';

type MacParams = { Params: { id: string } };
type ExecParams = { Params: { id: string; action: string } };

/** Most runs one `POST …/action/remove` names. */
const maxRemoved = 1000;
const RemoveBody = Type.Object({ actions: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { maxItems: maxRemoved }) });
const validateRemove = bodyValidator<{ actions: string[] }>(RemoveBody);

/**
 * RDFM's v2 action routes, `/api/v2/devices/<mac>/action/…`, on fleetd's actions and runs
 * (docs/ota.md#actions): the device is named by its MAC (its external id), the run id is RDFM's
 * execution id. fleetd's actions service authorizes each call (viewers read, operators run, cancel
 * and delete) and does not find other organizations' devices. The path parameter is named `id`
 * like the other `/api/v2/devices/<id>` routes, whose position it shares.
 */
export async function actionRoutes(app: FastifyInstance, options: RdfmRouteOptions): Promise<void> {
  const { services, config } = options;
  const resultWithinMs = Math.min(config.actionTimeout * 1000, rdfmResultWithinMs);

  /** The caller, the organization, and the device the path's MAC names in it (404 otherwise). */
  async function target(request: FastifyRequest & { params: { id: string } }) {
    const management = await managementOf(request, options);
    return { ...management, device: await deviceByMac(services, management.org.id, request.params.id) };
  }

  app.get<MacParams>('/api/v2/devices/:id/action/list', { config: { access: { actions: ['device.read'] } } }, async (request) => {
    const { actor, org, device } = await target(request);
    return (await services.actions.listAdvertised(actor.principal, org.id, device.id)).map(rdfmAction);
  });

  app.get<ExecParams>('/api/v2/devices/:id/action/exec/:action', { config: { access: { actions: ['device.control'] } } }, async (request, reply) => {
    const { actor, org, device } = await target(request);
    // The wait ends when the client leaves: nobody reads the answer then.
    const left = new AbortController();
    reply.raw.once('close', () => left.abort());
    const outcome = await execAction(services, resultWithinMs, actor, org.id, device, request.params.action, left.signal);
    return reply.status(outcome.status).send(outcome.body);
  });

  app.get<MacParams>('/api/v2/devices/:id/action/log', { config: { access: { actions: ['device.read'] } } }, async (request) => {
    const { actor, org, device } = await target(request);
    return (await services.actions.runLog(actor.principal, org.id, device.id)).map(rdfmActionLog);
  });

  app.delete<MacParams>('/api/v2/devices/:id/action/log', { config: { access: { actions: ['device.control'] } } }, async (request) => {
    const { actor, org, device } = await target(request);
    await services.actions.deleteRuns(actor, org.id, device.id, 'ended');
    return {};
  });

  app.delete<MacParams>('/api/v2/devices/:id/action/pending', { config: { access: { actions: ['device.control'] } } }, async (request) => {
    const { actor, org, device } = await target(request);
    await services.actions.cancelPending(actor, org.id, device.id);
    return {};
  });

  app.post<MacParams>('/api/v2/devices/:id/action/remove', { config: { access: { actions: ['device.control'] } } }, async (request) => {
    const { actions } = validateRemove(request.body);
    const { actor, org, device } = await target(request);
    await services.actions.deleteRuns(actor, org.id, device.id, actions);
    return {};
  });
}
