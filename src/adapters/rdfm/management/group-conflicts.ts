import type { Principal } from '../../../core/access.ts';
import { conflict } from '../../../core/errors.ts';
import type { DeviceGroup } from '../../../services/groups.ts';
import type { RdfmRouteOptions } from '../plugin.ts';
import { allPages } from './all-pages.ts';
import { rdfmPriorityOf } from './group-priority.ts';

/**
 * RDFM's rule that a device is in at most one group of each priority, so that its active group is
 * never a tie: 409 when one of `deviceIds` is a member of another group of the organization whose
 * (fleetd) priority is `priority`. fleetd itself allows ties (the older group wins); only RDFM's
 * routes keep to the rule, and a group's own members are no conflict with it.
 */
export async function refuseSamePriority(
  options: RdfmRouteOptions,
  principal: Principal,
  group: Pick<DeviceGroup, 'id' | 'orgId'>,
  priority: number,
  deviceIds: readonly string[],
): Promise<void> {
  if (deviceIds.length === 0) return;
  const { services, ids } = options;
  const groups = await allPages((page) => services.groups.list(principal, group.orgId, {}, page));
  const samePriority = new Set(groups.filter((other) => other.id !== group.id && other.priority === priority).map((other) => other.id));
  if (samePriority.size === 0) return;
  for (const [deviceId, groupIds] of await services.groups.groupIdsOfMany(group.orgId, deviceIds)) {
    const other = groupIds.find((id) => samePriority.has(id));
    if (other === undefined) continue;
    const [device, otherGroup] = [await ids.number('device', deviceId), await ids.number('group', other)];
    throw conflict(`device ${device} is already assigned to group ${otherGroup}, which has the same priority ${rdfmPriorityOf(priority)}`);
  }
}
