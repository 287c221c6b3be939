import { Argument, Command } from 'commander';
import { badRequest } from '../../core/errors.ts';
import { clientCommand, connect } from '../client/command.ts';
import { collectList, printList, printResult, withJsonOption, type Column } from '../client/output.ts';
import { resolveDevice, resolveGroup } from '../client/resolve.ts';

/** The fields of the API's Group the CLI shows; the update policy comes with OTA updates. */
interface Group {
  id: string;
  name: string;
  description: string;
  kind: 'static' | 'dynamic';
  priority: number;
  updatePolicy?: string;
  targetVersion?: string | null;
}

interface PackageSet {
  packageIds: string[];
}

const updatePolicies = ['no_update', 'exact_match'] as const;

const groupColumns: Column<Group>[] = [
  { header: 'ID', value: (g) => g.id },
  { header: 'NAME', value: (g) => g.name },
  { header: 'KIND', value: (g) => g.kind },
  { header: 'PRIORITY', value: (g) => g.priority },
  { header: 'POLICY', value: (g) => (g.targetVersion ? `${g.updatePolicy} ${g.targetVersion}` : g.updatePolicy) },
  { header: 'DESCRIPTION', value: (g) => g.description },
];

/** `--priority` as the API takes it: a whole number. */
function parsePriority(text: string): number {
  if (!/^-?\d+$/.test(text)) throw badRequest(`--priority ${JSON.stringify(text)} must be a whole number`);
  return Number(text);
}

/** The group filter of `create`: given any criterion, the group is dynamic. */
function filterOf(options: Record<string, unknown>): Record<string, unknown> | undefined {
  const filter = { tags: options.filterTags, model: options.filterModel };
  return Object.values(filter).some((value) => value !== undefined) ? filter : undefined;
}

export function groupsCommand(): Command {
  const groups = new Command('groups').description('device groups of an organization on a running server, and their update policies');
  groups.addCommand(
    withJsonOption(clientCommand('list'))
      .description("list the organization's groups")
      .action(async (options: Record<string, unknown>) => {
        const client = connect(options);
        printList(options, await client.listAll<Group>(client.orgPath('/groups')), groupColumns, 'No groups.');
      }),
  );
  groups.addCommand(
    withJsonOption(clientCommand('create'))
      .description('create a group (admins): static (add devices with `groups add`), or dynamic with a filter')
      .argument('<name>')
      .option('--description <text>')
      .option('--priority <n>', 'for a device in several groups, the highest priority decides', parsePriority)
      .option('--filter-tags <tags>', 'dynamic: the devices with every one of these tags (a,b; repeatable)', collectList)
      .option('--filter-model <model>', 'dynamic: the devices of this model')
      .action(async (name: string, options: Record<string, unknown>) => {
        const client = connect(options);
        const group = await client.post<Group>(client.orgPath('/groups'), { name, description: options.description, priority: options.priority, filter: filterOf(options) });
        printResult(options, group, `Created ${group.kind} group ${group.id} (${group.name}).`);
      }),
  );
  groups.addCommand(
    clientCommand('delete')
      .description('delete a group (admins); its devices stay')
      .argument('<group>', 'group id or name')
      .action(async (ref: string, options: Record<string, unknown>) => {
        const client = connect(options);
        const groupId = await resolveGroup(client, ref);
        await client.delete(client.orgPath(`/groups/${groupId}`));
        process.stdout.write(`Deleted group ${groupId}.\n`);
      }),
  );
  groups.addCommand(
    withJsonOption(clientCommand('devices'))
      .description("list a group's devices (a dynamic group's: those its filter matches now)")
      .argument('<group>', 'group id or name')
      .action(async (ref: string, options: Record<string, unknown>) => {
        const client = connect(options);
        const groupId = await resolveGroup(client, ref);
        const devices = await client.listAll<{ id: string; name: string; online: boolean }>(client.orgPath(`/groups/${groupId}/devices`));
        const columns: Column<(typeof devices)[number]>[] = [
          { header: 'ID', value: (d) => d.id },
          { header: 'NAME', value: (d) => d.name },
          { header: 'ONLINE', value: (d) => (d.online ? 'yes' : 'no') },
        ];
        printList(options, devices, columns, 'No devices in the group.');
      }),
  );
  groups.addCommand(
    clientCommand('add')
      .description('add devices to a static group (admins): all of them, or none when one is unknown')
      .argument('<group>', 'group id or name')
      .argument('<device...>', 'device ids or names')
      .action(async (ref: string, deviceRefs: string[], options: Record<string, unknown>) => {
        const client = connect(options);
        const groupId = await resolveGroup(client, ref);
        const deviceIds: string[] = [];
        for (const deviceRef of deviceRefs) deviceIds.push(await resolveDevice(client, deviceRef));
        const { added } = await client.post<{ added: number }>(client.orgPath(`/groups/${groupId}/members`), { deviceIds });
        process.stdout.write(`Added ${added} device${added === 1 ? '' : 's'} to group ${groupId}${added < deviceIds.length ? ` (${deviceIds.length - added} already in it)` : ''}.\n`);
      }),
  );
  groups.addCommand(
    clientCommand('remove')
      .description('remove devices from a static group (admins)')
      .argument('<group>', 'group id or name')
      .argument('<device...>', 'device ids or names')
      .action(async (ref: string, deviceRefs: string[], options: Record<string, unknown>) => {
        const client = connect(options);
        const groupId = await resolveGroup(client, ref);
        for (const deviceRef of deviceRefs) await client.delete(client.orgPath(`/groups/${groupId}/members/${await resolveDevice(client, deviceRef)}`));
        process.stdout.write(`Removed ${deviceRefs.length} device${deviceRefs.length === 1 ? '' : 's'} from group ${groupId}.\n`);
      }),
  );
  groups.addCommand(
    withJsonOption(clientCommand('policy'))
      .description("set a group's update policy (admins): no_update, or exact_match with the version its devices must run")
      .argument('<group>', 'group id or name')
      .addArgument(new Argument('<policy>', updatePolicies.join(' or ')).choices(updatePolicies))
      .option('--version <version>', 'the target version (exact_match)')
      .action(async (ref: string, policy: (typeof updatePolicies)[number], options: Record<string, unknown>) => {
        const version = options.version as string | undefined;
        if (policy === 'exact_match' && version === undefined) throw badRequest('exact_match needs the target version: --version <version>');
        if (policy === 'no_update' && version !== undefined) throw badRequest('no_update takes no --version');
        const client = connect(options);
        const groupId = await resolveGroup(client, ref);
        const group = await client.put<Group>(client.orgPath(`/groups/${groupId}/update-policy`), { policy, targetVersion: version });
        printResult(options, group, `Group ${groupId} now has policy ${policy}${version ? ` (version ${version})` : ''}.`);
      }),
  );
  groups.addCommand(
    withJsonOption(clientCommand('packages'))
      .description("show a group's package set, or replace it (admins): the packages its devices' updates are resolved over; none means every package of their type")
      .argument('<group>', 'group id or name')
      .argument('[packageId...]', 'the new set; without any, the set is shown')
      .option('--clear', 'empty the set')
      .action(async (ref: string, packageIds: string[], options: Record<string, unknown>) => {
        if (options.clear && packageIds.length > 0) throw badRequest('Give package ids or --clear, not both');
        const client = connect(options);
        const path = client.orgPath(`/groups/${await resolveGroup(client, ref)}/packages`);
        const changing = options.clear === true || packageIds.length > 0;
        const set = changing ? await client.put<PackageSet>(path, { packageIds }) : await client.get<PackageSet>(path);
        const listed = set.packageIds.length > 0 ? set.packageIds.join(' ') : 'none: every package of the devices’ type';
        printResult(options, set, `${changing ? 'Package set now' : 'Package set'}: ${listed}`);
      }),
  );
  return groups;
}
