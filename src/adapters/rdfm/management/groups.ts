import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { authorize } from '../../../core/access.ts';
import { conflict, FleetError } from '../../../core/errors.ts';
import { maxGroupPackages, maxMembersPerCall } from '../../../services/groups.ts';
import type { RdfmRouteOptions } from '../plugin.ts';
import { bodyValidator } from '../validation.ts';
import { refuseSamePriority } from './group-conflicts.ts';
import { allPages } from './all-pages.ts';
import { rdfmGroup, rdfmGroups, type ApiVersion } from './group-json.ts';
import { GroupMetadata, groupInputOf } from './group-metadata.ts';
import { parsePolicy } from './group-policy.ts';
import { defaultRdfmPriority, fleetdPriorityOf, RdfmPriority } from './group-priority.ts';
import { fleetdIdOf, managementOf } from './context.ts';

const Ids = (maxItems: number) => Type.Array(Type.Integer(), { maxItems });
const validateV1Create = bodyValidator<Record<string, string>>(GroupMetadata);
const validateV2Create = bodyValidator<{ metadata: Record<string, string>; priority?: number }>(Type.Object({ metadata: GroupMetadata, priority: Type.Optional(RdfmPriority) }));
const validateDevices = bodyValidator<{ add: number[]; remove: number[] }>(Type.Object({ add: Ids(maxMembersPerCall), remove: Ids(maxMembersPerCall) }));
const validatePackages = bodyValidator<{ packages: number[] }>(Type.Object({ packages: Ids(maxGroupPackages) }));
const validatePolicy = bodyValidator<{ policy: string }>(Type.Object({ policy: Type.String({ maxLength: 1000 }) }));
const validatePriority = bodyValidator<{ priority: number }>(Type.Object({ priority: RdfmPriority }));

type GroupRequest = FastifyRequest<{ Params: { id: string } }>;
const read = { config: { access: { actions: ['device.read'] } } } as const;
const write = { config: { access: { actions: ['device.manage'] } } } as const;

/**
 * RDFM's groups (`/api/v1/groups`, `/api/v2/groups`) as fleetd's device groups: integer ids,
 * metadata holding the name and description, RDFM's policy strings and its priorities (lower
 * wins, see group-priority.ts). Writes are checked for device.manage before anything is read, so
 * that a viewer is refused even where the change would be empty.
 */
export async function groupRoutes(app: FastifyInstance, options: RdfmRouteOptions): Promise<void> {
  const { services, ids } = options;
  const { groups } = services;

  /** The caller, its organization and the group the path names (404 when it is not one of the organization's). */
  const groupOf = async (request: GroupRequest, action: 'device.read' | 'device.manage') => {
    const { actor, org } = await managementOf(request, options);
    authorize(actor.principal, action, { orgId: org.id });
    const id = await fleetdIdOf(options, 'group', request.params.id, 'group');
    return { actor, org, group: await groups.get(actor.principal, org.id, id) };
  };

  for (const version of ['v1', 'v2'] as const satisfies ApiVersion[]) {
    app.get(`/api/${version}/groups`, read, async (request) => {
      const { actor, org } = await managementOf(request, options);
      return rdfmGroups(options, actor.principal, await allPages((page) => groups.list(actor.principal, org.id, {}, page)), version);
    });

    app.get(`/api/${version}/groups/:id`, read, async (request: GroupRequest) => {
      const { actor, group } = await groupOf(request, 'device.read');
      return rdfmGroup(options, actor.principal, group, version);
    });

    app.delete(`/api/${version}/groups/:id`, write, async (request: GroupRequest) => {
      const { actor, org, group } = await groupOf(request, 'device.manage');
      if ((await groups.memberIds(org.id, group.id)).length > 0) throw conflict('group is still assigned to some devices');
      await groups.delete(actor, org.id, group.id);
      return {};
    });

    // Additions and removals in one transaction; a device to add that is unknown, or in another group of the same priority, changes nothing.
    app.patch(`/api/${version}/groups/:id/devices`, write, async (request: GroupRequest) => {
      const { add, remove } = validateDevices(request.body);
      const { actor, org, group } = await groupOf(request, 'device.manage');
      const added = await Promise.all(add.map(async (number) => (await ids.fleetdId('device', number)) ?? missingDevice(number)));
      await refuseSamePriority(options, actor.principal, group, group.priority, added);
      const removed = (await Promise.all(remove.map((number) => ids.fleetdId('device', number)))).filter((id): id is string => id !== undefined);
      if (added.length + removed.length > 0) await groups.changeMembers(actor, org.id, group.id, { add: added, remove: removed }).catch(unknownDevicesConflict);
      return {};
    });

    // Replaces the whole package set; an unknown package changes nothing (409).
    app.post(`/api/${version}/groups/:id/package`, write, async (request: GroupRequest) => {
      const { packages } = validatePackages(request.body);
      const { actor, org, group } = await groupOf(request, 'device.manage');
      const packageIds = await Promise.all(packages.map(async (number) => (await ids.fleetdId('package', number)) ?? missingPackage(number)));
      await groups.setPackages(actor, org.id, group.id, packageIds);
      return {};
    });

    app.post(`/api/${version}/groups/:id/policy`, write, async (request: GroupRequest) => {
      const { policy } = validatePolicy(request.body);
      const parsed = parsePolicy(policy);
      const { actor, org, group } = await groupOf(request, 'device.manage');
      await groups.setUpdatePolicy(actor, org.id, group.id, parsed);
      return {};
    });
  }

  // v1: the body is the metadata; the group gets RDFM's default priority.
  app.post('/api/v1/groups', write, async (request) => {
    const metadata = validateV1Create(request.body);
    const { actor, org } = await managementOf(request, options);
    const group = await groups.create(actor, org.id, { ...groupInputOf(metadata), priority: fleetdPriorityOf(defaultRdfmPriority) });
    return rdfmGroup(options, actor.principal, group, 'v1');
  });

  app.post('/api/v2/groups', write, async (request) => {
    const { metadata, priority = defaultRdfmPriority } = validateV2Create(request.body);
    const { actor, org } = await managementOf(request, options);
    const group = await groups.create(actor, org.id, { ...groupInputOf(metadata), priority: fleetdPriorityOf(priority) });
    return rdfmGroup(options, actor.principal, group, 'v2');
  });

  // 409 when a member is also in another group that has the new priority: it would have two active groups.
  app.post('/api/v2/groups/:id/priority', write, async (request: GroupRequest) => {
    const { priority } = validatePriority(request.body);
    const { actor, org, group } = await groupOf(request, 'device.manage');
    await refuseSamePriority(options, actor.principal, group, fleetdPriorityOf(priority), await groups.memberIds(org.id, group.id));
    await groups.update(actor, org.id, group.id, { priority: fleetdPriorityOf(priority) });
    return {};
  });
}

const missingDevice = (number: number): never => {
  throw conflict(`device ${number} does not exist`);
};

const missingPackage = (number: number): never => {
  throw conflict(`package ${number} does not exist`);
};

/** fleetd answers devices of another organization with 404; RDFM answers an unknown device with 409. */
function unknownDevicesConflict(error: unknown): never {
  if (error instanceof FleetError && error.code === 'not_found' && error.details !== undefined) throw conflict('a device to add does not exist');
  throw error;
}
