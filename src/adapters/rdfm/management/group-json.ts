import type { Principal } from '../../../core/access.ts';
import type { DeviceGroup } from '../../../services/groups.ts';
import type { RdfmRouteOptions } from '../plugin.ts';
import { rfc822 } from '../wire.ts';
import { rdfmGroupMetadata } from './group-metadata.ts';
import { policyText } from './group-policy.ts';
import { rdfmPriorityOf } from './group-priority.ts';

/** RDFM's Group, v1; v2 adds `priority`. */
export interface RdfmGroup {
  id: number;
  created: string;
  devices: number[];
  packages: number[];
  metadata: Record<string, string>;
  policy: string;
  priority?: number;
}

export type ApiVersion = 'v1' | 'v2';

/**
 * Groups as RDFM shows them, with their members (a dynamic group's: the devices its filter matches
 * now) and package sets as RDFM integers, numbered in one batch per kind.
 */
export async function rdfmGroups(options: RdfmRouteOptions, principal: Principal, groups: DeviceGroup[], version: ApiVersion): Promise<RdfmGroup[]> {
  const { services, ids } = options;
  const members = await Promise.all(groups.map((group) => services.groups.memberIds(group.orgId, group.id)));
  const packages = await Promise.all(groups.map((group) => services.groups.packageIds(principal, group.orgId, group.id)));
  const groupNumbers = await ids.numbers('group', groups.map((group) => group.id));
  const deviceNumbers = await ids.numbers('device', members.flat());
  const packageNumbers = await ids.numbers('package', packages.flat());
  const shown = groups.map((group, i) => ({
    id: groupNumbers.get(group.id)!,
    created: rfc822(group.createdAt),
    devices: members[i]!.map((id) => deviceNumbers.get(id)!).sort((a, b) => a - b),
    packages: packages[i]!.map((id) => packageNumbers.get(id)!).sort((a, b) => a - b),
    metadata: rdfmGroupMetadata(group),
    policy: policyText(group),
    ...(version === 'v2' && { priority: rdfmPriorityOf(group.priority) }),
  }));
  return shown.sort((a, b) => a.id - b.id);
}

export async function rdfmGroup(options: RdfmRouteOptions, principal: Principal, group: DeviceGroup, version: ApiVersion): Promise<RdfmGroup> {
  return (await rdfmGroups(options, principal, [group], version))[0]!;
}
