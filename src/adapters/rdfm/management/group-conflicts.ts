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
  const wanted = new Set(deviceIds);
  const others = (await allPages((page) => services.groups.list(principal, group.orgId, {}, page))).filter((other) => other.id !== group.id && other.priority === priority);
  for (const other of others) {
    const taken = (await services.groups.memberIds(other.orgId, other.id)).find((id) => wanted.has(id));
    if (taken === undefined) continue;
    const [device, otherGroup] = [await ids.number('device', taken), await ids.number('group', other.id)];
    throw conflict(`device ${device} is already assigned to group ${otherGroup}, which has the same priority ${rdfmPriorityOf(priority)}`);
  }
}
