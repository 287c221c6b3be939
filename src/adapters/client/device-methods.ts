import { Type } from 'typebox';
import type { Principal } from '../../core/access.ts';
import type { StateDocument } from '../../core/device-state.ts';
import { FleetError, notFound } from '../../core/errors.ts';
import type { Hub } from '../../hub/hub.ts';
import type { Device } from '../../services/devices.ts';
import { PageQuery } from '../../http/schemas.ts';
import type { Dispatcher } from '../jsonrpc/dispatcher.ts';
import { actorOf, type ClientContext } from './dispatcher.ts';
import { OrgParam, orgOf, orgResource } from './org.ts';

export const DeviceRef = Type.String({ minLength: 1, maxLength: 128, description: 'A fleetd device id, or the id the device calls itself by (its external id)' });
export const Tag = Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,64}$' });
export const GroupId = Type.String({ minLength: 1, maxLength: 100 });

/**
 * The device a call names, by fleetd id or external id, within the call's organization: a device of
 * another organization is not found, as is one the principal may not read.
 */
export async function resolveDevice(hub: Hub, principal: Principal, orgId: string, ref: string): Promise<Device> {
  const { devices } = hub.services;
  try {
    return await devices.get(principal, orgId, ref);
  } catch (error) {
    if (!(error instanceof FleetError && error.code === 'not_found')) throw error;
  }
  const named = await devices.findByExternalId(ref);
  if (named?.orgId !== orgId) throw notFound('Device');
  // Read again as the principal: the lookup by external id asked no permission.
  return devices.get(principal, orgId, named.id);
}

export function registerDeviceMethods(dispatcher: Dispatcher<ClientContext>, hub: Hub): void {
  const { devices, groups } = hub.services;
  const resource = ({ org }: { org?: string }, { principal }: { principal: Principal }) => orgResource(hub, principal, org);

  dispatcher.register({
    name: 'Device.List',
    params: Type.Object(
      {
        org: OrgParam,
        q: Type.Optional(Type.String({ maxLength: 200, description: 'Text in the name, id or model' })),
        tags: Type.Optional(Type.Array(Tag, { minItems: 1, maxItems: 20, description: 'Devices with every one of these tags' })),
        online: Type.Optional(Type.Boolean()),
        model: Type.Optional(Type.String({ maxLength: 200 })),
        group: Type.Optional(GroupId),
        ...PageQuery,
      },
      { additionalProperties: false },
    ),
    access: { actions: ['device.read'] },
    resource,
    handler: async ({ org, group, limit, cursor, ...filter }, { principal }) => {
      const { id } = await orgOf(hub, principal, org);
      if (group === undefined) return devices.list(principal, id, filter, { limit, cursor });
      // A group's members come from its own query, which takes no further filter.
      if (Object.keys(filter).length > 0) {
        throw new FleetError('validation_failed', 'Invalid params: group cannot be combined with q, tags, online or model', { details: [{ field: 'group', message: 'cannot be combined with other filters' }] });
      }
      return groups.members(principal, id, group, { limit, cursor });
    },
  });

  dispatcher.register({
    name: 'Device.Get',
    params: Type.Object({ org: OrgParam, device: DeviceRef }, { additionalProperties: false }),
    access: { actions: ['device.read'] },
    resource,
    handler: async ({ org, device }, { principal }) => {
      const found = await resolveDevice(hub, principal, (await orgOf(hub, principal, org)).id, device);
      return { device: found, state: await devices.state(principal, found.orgId, found.id) };
    },
  });

  dispatcher.register({
    name: 'Device.Update',
    params: Type.Object(
      {
        org: OrgParam,
        device: DeviceRef,
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
        tags: Type.Optional(Type.Array(Tag, { maxItems: 100, description: 'The whole new list of tags' })),
        metadata: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'Merged into the metadata; null removes a field' })),
      },
      { additionalProperties: false },
    ),
    access: { actions: ['device.update'] },
    resource,
    handler: async ({ org, device, name, tags, metadata }, context) => {
      const found = await resolveDevice(hub, context.principal, (await orgOf(hub, context.principal, org)).id, device);
      return devices.update(actorOf(context), found.orgId, found.id, { name, tags, metadata: metadata as StateDocument | undefined });
    },
  });

  dispatcher.register({
    name: 'Device.Delete',
    params: Type.Object({ org: OrgParam, device: DeviceRef }, { additionalProperties: false }),
    access: { actions: ['device.manage'] },
    resource,
    handler: async ({ org, device }, context) => {
      const found = await resolveDevice(hub, context.principal, (await orgOf(hub, context.principal, org)).id, device);
      await devices.delete(actorOf(context), found.orgId, found.id);
      return true;
    },
  });

  dispatcher.register({
    name: 'Group.List',
    params: Type.Object({ org: OrgParam, q: Type.Optional(Type.String({ maxLength: 200 })), ...PageQuery }, { additionalProperties: false }),
    access: { actions: ['device.read'] },
    resource,
    handler: async ({ org, q, limit, cursor }, { principal }) => groups.list(principal, (await orgOf(hub, principal, org)).id, { q }, { limit, cursor }),
  });

  dispatcher.register({
    name: 'Device.SetDesired',
    params: Type.Object(
      { org: OrgParam, device: DeviceRef, desired: Type.Object({}, { additionalProperties: true, description: 'Merged into the desired state; null removes a field' }) },
      { additionalProperties: false },
    ),
    access: { actions: ['device.control'] },
    resource,
    handler: async ({ org, device, desired }, context) => {
      const found = await resolveDevice(hub, context.principal, (await orgOf(hub, context.principal, org)).id, device);
      const state = await devices.setDesired(actorOf(context), found.orgId, found.id, desired as StateDocument);
      hub.links.desiredChanged(found.id, state);
      return state;
    },
  });
}
