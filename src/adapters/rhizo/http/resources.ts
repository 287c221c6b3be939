import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isSystemAdmin } from '../../../core/access.ts';
import { badRequest, FleetError, forbidden } from '../../../core/errors.ts';
import { isFolderType, resourceTypeCodes, resourceTypeOf } from '../../../core/resource-paths.ts';
import { toResourceInfo, type ResourceInfo } from '../../../services/resources/resource-info.ts';
import type { NewResourceInput, ResourceChanges } from '../../../services/resources/tree.ts';
import { sequenceInfo, updateSequenceSettings } from '../../../services/series/settings.ts';
import { changeSystemAttributes } from '../../../services/system-attributes.ts';
import type { Services } from '../../../services/index.ts';
import { actorOf } from '../../../http/access.ts';
import type { Actor } from '../../../services/actor.ts';
import { clearData } from './data-only.ts';
import { orBadRequest, Params } from './forms.ts';
import type { RhizoOptions } from './plugin.ts';
import { dictOf, fileRead, listing, sequenceRead } from './resource-read.ts';
import { changesSettings, rhizoMinStorageInterval, sequenceSettingsOf } from './sequence-params.ts';

/**
 * rhizo's resource routes: `/api/v1/resources/<path>` reads, changes and deletes what is at the
 * path (`self` is the calling controller's folder), `POST /api/v1/resources` creates.
 */

type Wildcard = { Params: { '*': string } };

const alreadyExists = { status: 'error', message: 'Resource already exists.' };

/** rhizo normalizes the line ends of text files it is given. */
const normalizeText = (name: string, content: Buffer) => (/\.(csv|txt)$/i.test(name) ? Buffer.from(content.toString('utf8').replace(/\r\n?/g, '\n')) : content);

/** What a controller creating itself through rhizo got: a log and its status sequences. */
async function addControllerExtras(services: Services, actor: Actor, folder: ResourceInfo): Promise<void> {
  const sequence = (dataType: 'numeric' | 'text', units?: string) => ({ dataType, units, maxHistory: 10_000, minStorageInterval: rhizoMinStorageInterval(dataType) });
  await services.resources.create(actor, folder.path, { name: 'log', type: 'sequence', sequence: sequence('text') });
  const status = `${folder.path}/status`;
  await services.resources.create(actor, folder.path, { name: 'status', type: 'basic_folder' });
  await services.resources.create(actor, status, { name: 'free_disk_space', type: 'sequence', sequence: sequence('numeric', 'bytes') });
  await services.resources.create(actor, status, { name: 'processor_usage', type: 'sequence', sequence: sequence('numeric', 'percent') });
  for (const name of ['messages_sent', 'messages_received', 'serial_errors']) await services.resources.create(actor, status, { name, type: 'sequence', sequence: sequence('numeric') });
}

export async function resourceRoutes(app: FastifyInstance, { services, bodyLimit }: RhizoOptions): Promise<void> {
  const { resources, series, store } = services;

  /** The resource a request names: `self` is the folder of the controller whose key it is. */
  const target = async (request: FastifyRequest<Wildcard>, need: 'read' | 'write'): Promise<ResourceInfo> => {
    const p = request.principal;
    const path = request.params['*'];
    if (path === 'self') {
      if (p?.kind !== 'device') throw forbidden('Only a controller key has a self');
      return resources.deviceFolder(p.deviceId);
    }
    return resources.resolve(p, `/${path}`, need);
  };

  app.get<Wildcard>('/api/v1/resources/*', { config: { access: { actions: ['resource.read'], anonymous: true } } }, async (request, reply) => {
    const params = await Params.of(request, bodyLimit);
    const r = await target(request, 'read');
    const p = request.principal;
    if (params.flag('meta')) return { ...(await dictOf(services, r, true)), path: r.path };
    if (isFolderType(r.type)) return listing(services, p, r, params);
    if (r.type === 'sequence') return sequenceRead(services, p, r, params, reply);
    return fileRead(services, p, r, params, reply);
  });

  // rhizo's system admin view: every resource of a type, across organizations.
  app.get('/api/v1/resources', { config: { access: { actions: ['resource.read'] } } }, async (request) => {
    const p = actorOf(request).principal;
    if (!isSystemAdmin(p)) throw forbidden('Only system admins list resources by type');
    const params = await Params.of(request, bodyLimit);
    const type = resourceTypeOf(params.requiredInteger('type', 10, 29));
    const extended = params.flag('extended');
    const withPath = params.flag('folder_info') || params.flag('folderInfo');
    const rows = await store.db
      .selectFrom('resources')
      .innerJoin('organizations', 'organizations.id', 'resources.org_id')
      .selectAll('resources')
      .select('organizations.slug')
      .where('resources.type', '=', resourceTypeCodes[type])
      .where('resources.deleted', '=', 0)
      .orderBy('resources.id')
      .execute();
    const entries = await Promise.all(
      rows.map(async ({ slug, ...row }) => {
        const r = toResourceInfo(row, slug);
        return [r.id, { ...(await dictOf(services, r, extended, true)), ...(withPath && { path: r.path }) }] as const;
      }),
    );
    return Object.fromEntries(entries);
  });

  app.post('/api/v1/resources', { config: { access: { actions: ['resource.write'] } } }, async (request) => {
    const actor = actorOf(request);
    const params = await Params.of(request, bodyLimit);
    const parentPath = params.string('path', 'parent');
    if (!parentPath?.startsWith('/')) throw badRequest('path must be the absolute path of the parent folder');
    const name = params.file?.filename || params.required('name');
    const type = resourceTypeOf(params.requiredInteger('type', 10, 29));
    // A controller folder makes a device, which takes a person (fleetd would only say "not found" to a device).
    if (type === 'controller_folder' && actor.principal.kind === 'device') throw forbidden('Controllers are made by people, not by other controllers');
    // Checked for rhizo's sake; fleetd stamps its own times.
    params.timestamp('creation_timestamp', 'creationTimestamp');
    params.timestamp('modification_timestamp', 'modificationTimestamp');
    const input: NewResourceInput = { name, type, userAttributes: params.json('user_attributes'), createParents: true };
    if (type === 'file') input.content = normalizeText(name, params.file?.content ?? params.base64('contents', 'data') ?? Buffer.alloc(0));
    if (type === 'sequence') input.sequence = sequenceSettingsOf(params, true);
    if (type === 'remote_folder') input.systemAttributes = { remote_path: params.required('remote_path') };
    let created: ResourceInfo;
    try {
      created = await resources.create(actor, parentPath, input);
    } catch (error) {
      if (error instanceof FleetError && error.code === 'conflict') return alreadyExists;
      throw error;
    }
    if (type === 'controller_folder') await addControllerExtras(services, actor, created);
    return { status: 'ok', id: created.id };
  });

  // rhizo's older way to write a file: create it (with its folders) or add a revision.
  app.post<Wildcard>('/api/v1/resources/*', { config: { access: { actions: ['resource.write'] } } }, async (request) => {
    const actor = actorOf(request);
    const params = await Params.of(request, bodyLimit);
    const path = `/${request.params['*']}`;
    const slash = path.lastIndexOf('/');
    const name = path.slice(slash + 1);
    const content = normalizeText(name, params.base64('contents', 'data') ?? Buffer.alloc(0));
    try {
      const existing = await resources.resolve(actor.principal, path, 'write');
      await resources.writeFile(actor, existing.path, content);
      return { status: 'ok', id: existing.id };
    } catch (error) {
      if (!(error instanceof FleetError && error.code === 'not_found')) throw error;
    }
    const created = await resources.create(actor, path.slice(0, slash), { name, type: 'file', content, createParents: true });
    return { status: 'ok', id: created.id };
  });

  app.put<Wildcard>('/api/v1/resources/*', { config: { access: { actions: ['resource.write'] } } }, async (request) => {
    const actor = actorOf(request);
    const params = await Params.of(request, bodyLimit);
    const r = await target(request, 'write');
    // Everything is read and checked before anything changes, so that a bad parameter changes nothing.
    const changes: ResourceChanges = {};
    const name = params.string('name');
    if (name !== undefined) changes.name = name;
    const parent = params.string('parent');
    if (parent !== undefined) {
      if (!parent.startsWith('/')) throw badRequest('parent must be an absolute folder path');
      changes.parentPath = parent;
    }
    const userAttributes = params.json('user_attributes');
    if (userAttributes !== undefined) changes.userAttributes = userAttributes;
    const settings = r.type === 'sequence' && changesSettings(params) ? sequenceSettingsOf(params, false) : undefined;
    const controllerStatus = r.type === 'controller_folder' ? params.json('status') : undefined;
    const watchdog = r.type === 'controller_folder' ? watchdogSettings(params.json('system_attributes')) : undefined;
    if (r.type === 'remote_folder' && (params.has('remote_path') || params.has('controller_id'))) {
      changes.systemAttributes = { ...r.systemAttributes, ...pick(params, ['remote_path', 'controller_id']) };
    }
    const fullName = r.type === 'organization_folder' ? params.string('full_name') || undefined : undefined;
    if (fullName !== undefined && fullName.length > 200) throw badRequest('full_name is at most 200 characters');
    const content = params.base64('data', 'contents');
    const info = r.type === 'sequence' ? await sequenceInfo(store.db, r.id) : undefined;
    if (content !== undefined && r.type !== 'sequence' && r.type !== 'file') throw badRequest(`${r.path} takes no content`);

    let current = r;
    if (Object.keys(changes).length > 0) {
      const move = () => resources.update(actor, r.path, changes);
      try {
        current = changes.parentPath === undefined ? await move() : await orBadRequest(move, `No folder ${changes.parentPath}`);
      } catch (error) {
        // rhizo answers a name taken in the folder with 400.
        if (error instanceof FleetError && error.code === 'conflict') throw badRequest(error.message);
        throw error;
      }
    }
    if (settings !== undefined) await updateSequenceSettings(store.db, r.id, settings);
    if (controllerStatus !== undefined) {
      await changeSystemAttributes(store.db, r.id, (attributes) => ({ ...attributes, attributes: { ...asObject(attributes.attributes), ...controllerStatus } }));
    }
    if (watchdog !== undefined) await changeSystemAttributes(store.db, r.id, (attributes) => ({ ...attributes, ...watchdog }));
    if (fullName !== undefined) await services.organizations.update(actor, r.orgId, { name: fullName });
    if (content !== undefined) {
      if (r.type === 'file') await resources.writeFile(actor, current.path, normalizeText(current.name, content));
      else await series.record(actor, current.path, info?.dataType === 'image' ? content : content.toString('utf8'));
    }
    return { status: 'ok', id: r.id };
  });

  app.delete<Wildcard>('/api/v1/resources/*', { config: { access: { actions: ['resource.write'] } } }, async (request) => {
    const actor = actorOf(request);
    const params = await Params.of(request, bodyLimit);
    const r = await target(request, 'write');
    if (params.flag('data_only')) await clearData(services, actor, r);
    else await resources.delete(actor, r.path);
    return { status: 'ok', id: r.id };
  });
}

const asObject = (value: unknown): Record<string, unknown> => (value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {});

function pick(params: Params, names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((name) => (params.has(name) ? [[name, params.string(name)!]] : [])));
}

/** Of a controller's system attributes, rhizo lets a PUT change the watchdog's only. */
function watchdogSettings(attributes: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (attributes === undefined) return undefined;
  const settings: Record<string, unknown> = {};
  if (attributes.watchdog_recipients !== undefined) {
    if (typeof attributes.watchdog_recipients !== 'string' || attributes.watchdog_recipients.length > 1000) throw badRequest('watchdog_recipients is a comma-separated list');
    settings.watchdog_recipients = attributes.watchdog_recipients;
  }
  if (attributes.watchdog_minutes !== undefined) {
    const minutes = Number(attributes.watchdog_minutes);
    if (!Number.isInteger(minutes) || minutes < 0 || minutes > 525_600) throw badRequest('watchdog_minutes is a whole number of minutes');
    settings.watchdog_minutes = minutes;
  }
  return Object.keys(settings).length > 0 ? settings : undefined;
}
