import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest } from '../../../core/errors.ts';
import type { Device } from '../../../services/devices.ts';
import type { RdfmRouteOptions } from '../plugin.ts';
import { fleetdIdOf, managementOf, type Management } from './context.ts';
import { allPages } from './all-pages.ts';
import { rdfmDevices } from './device-json.ts';
import { checkTag, maxTags } from './device-tags.ts';

type IdParams = { Params: { id: string } };

/**
 * RDFM's devices are the devices of the organization its API stands for, named by RDFM integers:
 * v1 and v2 lists and single devices, deletion, and v2's tags. The devices service authorizes each
 * call (viewers read, operators tag, admins delete) and does not find other organizations' devices.
 */
export async function deviceRoutes(app: FastifyInstance, options: RdfmRouteOptions): Promise<void> {
  const { services } = options;

  /** The device an `<id>` names, as the caller may read it; 404 when it is none of the organization's. */
  async function deviceOf(request: FastifyRequest<IdParams>): Promise<Management & { device: Device }> {
    const management = await managementOf(request, options);
    const deviceId = await fleetdIdOf(options, 'device', request.params.id, 'Device');
    return { ...management, device: await services.devices.get(management.actor.principal, management.org.id, deviceId) };
  }

  for (const version of [1, 2] as const) {
    app.get(`/api/v${version}/devices`, { config: { access: { actions: ['device.read'] } } }, async (request) => {
      const { actor, org } = await managementOf(request, options);
      return rdfmDevices(options, await allPages((page) => services.devices.list(actor.principal, org.id, {}, page)), version);
    });

    app.get<IdParams>(`/api/v${version}/devices/:id`, { config: { access: { actions: ['device.read'] } } }, async (request) => {
      const { device } = await deviceOf(request);
      const [shown] = await rdfmDevices(options, [device], version);
      return shown;
    });

    app.delete<IdParams>(`/api/v${version}/devices/:id`, { config: { access: { actions: ['device.manage'] } } }, async (request) => {
      const { actor, org, device } = await deviceOf(request);
      await services.devices.delete(actor, org.id, device.id);
      return {};
    });
  }

  app.post<{ Params: { id: string; tag: string } }>('/api/v2/devices/:id/tag/:tag', { config: { access: { actions: ['device.update'] } } }, async (request) => {
    const tag = checkTag(request.params.tag);
    const { actor, org, device } = await deviceOf(request);
    if (device.tags.includes(tag)) return {};
    if (device.tags.length >= maxTags) throw badRequest(`A device carries at most ${maxTags} tags`);
    await services.devices.update(actor, org.id, device.id, { tags: [...device.tags, tag] });
    return {};
  });

  app.get<IdParams>('/api/v2/devices/:id/tags', { config: { access: { actions: ['device.read'] } } }, async (request) => {
    const { device } = await deviceOf(request);
    return device.tags;
  });

  app.get<{ Params: { tag: string } }>('/api/v2/tags/:tag', { config: { access: { actions: ['device.read'] } } }, async (request) => {
    const tag = checkTag(request.params.tag);
    const { actor, org } = await managementOf(request, options);
    return rdfmDevices(options, await allPages((page) => services.devices.list(actor.principal, org.id, { tags: [tag] }, page)), 2);
  });
}
