import { Type } from 'typebox';
import type { Principal } from '../../core/access.ts';
import { FleetError } from '../../core/errors.ts';
import type { Hub } from '../../hub/hub.ts';
import { maxPageSize } from '../../store/page.ts';
import { mapBounded } from '../jsonrpc/bounded.ts';
import type { Dispatcher } from '../jsonrpc/dispatcher.ts';
import { errorObjectOf, type ErrorObject, type Params } from '../jsonrpc/messages.ts';
import type { ClientContext } from './dispatcher.ts';
import { DeviceRef, GroupId, resolveDevice, Tag } from './device-methods.ts';
import { OrgParam, orgOf, orgResource } from './org.ts';

/** Most devices one Device.CallMany reaches. */
export const maxCallTargets = 1000;
/** Calls of one Device.CallMany under way at once. */
const callConcurrency = 16;

const Method = Type.String({ minLength: 1, maxLength: 128, description: "The device's method, e.g. Switch.Set" });
const CallParams = Type.Optional(Type.Union([Type.Object({}, { additionalProperties: true }), Type.Array(Type.Unknown())], { description: "The method's params, by name or by position" }));

type CallOutcome = { device: string; result: unknown } | { device: string; error: ErrorObject };

const invalidParams = (field: string, message: string) => new FleetError('validation_failed', `Invalid params: ${field} ${message}`, { details: [{ field, message }] });

export function registerCallMethods(dispatcher: Dispatcher<ClientContext>, hub: Hub): void {
  const { devices, groups } = hub.services;
  const Timeout = Type.Optional(
    Type.Integer({ minimum: 1, maximum: hub.config.deviceCallTimeout * 1000, description: 'How long to wait for the device, in milliseconds (at most deviceCallTimeout)' }),
  );
  const resource = ({ org }: { org?: string }, { principal }: { principal: Principal }) => orgResource(hub, principal, org);

  dispatcher.register({
    name: 'Device.Call',
    params: Type.Object({ org: OrgParam, device: DeviceRef, method: Method, params: CallParams, timeoutMs: Timeout }, { additionalProperties: false }),
    access: { actions: ['device.control'] },
    resource,
    // The device's error becomes the call's error: device_error (-32052) with the device's own error object as data.
    handler: async ({ org, device, method, params, timeoutMs }, { principal }) => {
      const found = await resolveDevice(hub, principal, (await orgOf(hub, principal, org)).id, device);
      return hub.links.call(found.id, method, params as Params | undefined, { timeoutMs });
    },
  });

  /** The devices a CallMany selects, in order: as the caller named them, or the ids of the group's or the tags' devices. */
  const targets = async (principal: Principal, orgId: string, selector: { devices?: string[]; tags?: string[]; group?: string }): Promise<string[]> => {
    if (selector.devices) return selector.devices;
    if (selector.group !== undefined) {
      await groups.get(principal, orgId, selector.group);
      return groups.memberIds(orgId, selector.group);
    }
    const ids: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await devices.list(principal, orgId, { tags: selector.tags }, { limit: maxPageSize, cursor });
      ids.push(...page.items.map((device) => device.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor && ids.length <= maxCallTargets);
    return ids;
  };

  dispatcher.register({
    name: 'Device.CallMany',
    params: Type.Object(
      {
        org: OrgParam,
        devices: Type.Optional(Type.Array(DeviceRef, { minItems: 1, maxItems: maxCallTargets })),
        tags: Type.Optional(Type.Array(Tag, { minItems: 1, maxItems: 20, description: 'The devices with every one of these tags' })),
        group: Type.Optional(GroupId),
        method: Method,
        params: CallParams,
        timeoutMs: Timeout,
      },
      { additionalProperties: false },
    ),
    access: { actions: ['device.control'] },
    resource,
    handler: async ({ org, devices: named, tags, group, method, params, timeoutMs }, { principal }) => {
      if ([named, tags, group].filter((selector) => selector !== undefined).length !== 1) throw invalidParams('devices', 'or tags or group: exactly one of them is required');
      const orgId = (await orgOf(hub, principal, org)).id;
      const refs = await targets(principal, orgId, { devices: named, tags, group });
      if (refs.length > maxCallTargets) throw invalidParams(named ? 'devices' : tags ? 'tags' : 'group', `selects more than ${maxCallTargets} devices`);
      // One device failing (not found, offline, its own error) is that device's outcome, not the call's.
      const results = await mapBounded(refs, callConcurrency, async (ref): Promise<CallOutcome> => {
        let device = ref;
        try {
          device = (await resolveDevice(hub, principal, orgId, ref)).id;
          return { device, result: (await hub.links.call(device, method, params as Params | undefined, { timeoutMs })) ?? null };
        } catch (error) {
          if (!(error instanceof FleetError)) throw error;
          return { device, error: errorObjectOf(error) };
        }
      });
      return { results };
    },
  });
}
