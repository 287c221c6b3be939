import type { BlobStore } from '../../blob/blob-store.ts';
import type { Config } from '../../config/keys.ts';
import { authorize, type Principal } from '../../core/access.ts';
import { badRequest, conflict, FleetError, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { accessLevel, checkPermissions, requireLevel, type AccessLevel, type PermissionEntry } from '../../core/resource-access.ts';
import { checkName, childPath, fullPathOf, isFolderType, isWithin, parseFullPath, resourceTypeOf, type ResourceType } from '../../core/resource-paths.ts';
import { nowIso, type Page, type PageRequest } from '../../store/page.ts';
import type { Db, Store } from '../../store/store.ts';
import { actorRef, type Actor } from '../actor.ts';
import { recordAudit } from '../audit.ts';
import { insertDevice } from '../devices.ts';
import type { Organization, Organizations } from '../organizations.ts';
import { insertSequence, updateSequenceSettings, type SequenceSettings } from '../series/settings.ts';
import { chainOf, chainsOf, inheritedRrd, permissionsOfChain } from './chain.ts';
import { findDeviceFolder, insertDeviceFolder } from './device-folders.ts';
import { insertResource, newResourceRow, type NewResource } from './insert.ts';
import { listRows, readableRows, type ListOptions } from './listing.ts';
import { findLive } from './org-root.ts';
import { toResourceInfo, type ResourceInfo, type ResourceRow } from './resource-info.ts';
import { insertRevision, listRevisions, prepareRevision, readRevision, type RevisionInfo } from './revisions.ts';
import { deleteSubtree, moveSubtree } from './subtree.ts';

export type { ResourceType } from '../../core/resource-paths.ts';
export type { ResourceInfo } from './resource-info.ts';
export type { RevisionInfo } from './revisions.ts';
export type { ListOptions } from './listing.ts';

export interface NewResourceInput {
  name: string;
  type: ResourceType;
  systemAttributes?: Record<string, unknown>;
  userAttributes?: Record<string, unknown>;
  /** Own entries (organization admins only); without them the resource inherits its parent's. */
  permissions?: PermissionEntry[];
  /** Makes missing folders on the way to the parent (basic folders inheriting permissions). */
  createParents?: boolean;
  /** A file's first revision. */
  content?: Buffer;
  /** Required for a sequence. */
  sequence?: SequenceSettings;
}

export interface ResourceChanges {
  /** Renames the resource; its subtree follows. */
  name?: string;
  /** Moves the resource into this folder (full path), in the same organization; its subtree follows. */
  parentPath?: string;
  /** Replaces the user attributes. */
  userAttributes?: Record<string, unknown>;
  /** Changes the system attributes key by key; null removes a key. */
  systemAttributes?: Record<string, unknown>;
  /** A sequence's settings; new archive arguments start its archives afresh. */
  sequence?: Partial<Omit<SequenceSettings, 'dataType'>>;
  /** Own entries (organization admins only); null inherits the parent's again. */
  permissions?: PermissionEntry[] | null;
}

export interface ResourceTreeOptions {
  store: Store;
  organizations: Organizations;
  blobs: BlobStore;
  config: Pick<Config, 'blobThreshold'>;
}

type Need = 'read' | 'write';

/** What a full path names: an organization, and a path below it. */
interface Target {
  org: Organization;
  relativePath: string;
}

/** A resource with what it was found through: its organization and its chain of ancestors, root first, itself last. */
interface Located {
  org: Organization;
  chain: ResourceRow[];
  row: ResourceRow;
}

const missing = () => notFound('Resource');

/**
 * Each organization's tree of folders, device folders, files and sequences, addressed by path, with
 * permissions inherited down the tree (core/resource-access.ts) and file revisions kept in the
 * database when small and in blob storage when large.
 */
export class ResourceTree {
  private readonly store: Store;
  private readonly organizations: Organizations;
  private readonly blobs: BlobStore;
  private readonly blobThreshold: number;

  constructor(options: ResourceTreeOptions) {
    this.store = options.store;
    this.organizations = options.organizations;
    this.blobs = options.blobs;
    this.blobThreshold = options.config.blobThreshold;
  }

  /** The resource at a full path, if the principal (undefined: anonymous) may `need` it. */
  async resolve(p: Principal | undefined, fullPath: string, need: Need = 'read'): Promise<ResourceInfo> {
    const { org, row } = await this.locate(this.store.db, p, fullPath, need);
    return toResourceInfo(row, org.slug);
  }

  /**
   * The resources at many full paths, each or the error that path alone gets (as `resolve` would
   * give it): one query per organization named instead of one per path, for bulk writes.
   */
  async resolveMany(p: Principal | undefined, fullPaths: readonly string[], need: Need = 'read'): Promise<Array<ResourceInfo | FleetError>> {
    const results: Array<ResourceInfo | FleetError> = new Array(fullPaths.length);
    const byOrg = new Map<string, { org: Organization; items: Array<{ index: number; relativePath: string }> }>();
    // Bulk writes name few organizations: each looked up once.
    const orgs = new Map<string, Promise<Organization>>();
    for (const [index, fullPath] of fullPaths.entries()) {
      try {
        const { orgSlug, relativePath } = parseFullPath(fullPath);
        const orgFound = orgs.get(orgSlug) ?? orgs.set(orgSlug, this.org(orgSlug)).get(orgSlug)!;
        const org = await orgFound;
        const group = byOrg.get(org.id) ?? byOrg.set(org.id, { org, items: [] }).get(org.id)!;
        group.items.push({ index, relativePath });
      } catch (error) {
        results[index] = asFleetError(error);
      }
    }
    for (const { org, items } of byOrg.values()) {
      const chains = await chainsOf(this.store.db, org.id, items.map((item) => item.relativePath));
      // A resource without entries of its own has its parent's permissions: the resources of a folder are decided once.
      const decisions = new Map<string, FleetError | undefined>();
      const decide = (chain: ResourceRow[]): FleetError | undefined => {
        const row = chain[chain.length - 1]!;
        const key = row.permissions === null && chain.length > 1 ? chain[chain.length - 2]!.id : row.id;
        if (decisions.has(key)) return decisions.get(key);
        let decision: FleetError | undefined;
        try {
          check(p, org.id, chain, need);
        } catch (error) {
          decision = asFleetError(error);
        }
        decisions.set(key, decision);
        return decision;
      };
      items.forEach(({ index, relativePath }, i) => {
        const chain = chains[i]!;
        const row = chain[chain.length - 1]!;
        try {
          const refused = decide(chain);
          if (refused) throw refused;
          if (row.path !== relativePath) throw missing();
          results[index] = toResourceInfo(row, org.slug);
        } catch (error) {
          results[index] = asFleetError(error);
        }
      });
    }
    return results;
  }

  async byId(p: Principal | undefined, id: string, need: Need = 'read'): Promise<ResourceInfo> {
    const row = await this.store.db.selectFrom('resources').selectAll().where('id', '=', id).where('deleted', '=', 0).executeTakeFirst();
    if (!row) throw missing();
    const org = await this.organizations.resolve(row.org_id);
    const chain = await chainOf(this.store.db, org.id, row.path);
    check(p, org.id, chain, need);
    return toResourceInfo(row, org.slug);
  }

  /** The level (0 none, 10 read, 20 write) the principal has on a resource. */
  async accessOf(p: Principal | undefined, r: Pick<ResourceInfo, 'orgId' | 'relativePath'>): Promise<AccessLevel> {
    return accessLevel(p, r.orgId, permissionsOfChain(await chainOf(this.store.db, r.orgId, r.relativePath)));
  }

  /** A folder's children (or whole subtree) the principal may read, ordered by path. */
  async list(p: Principal | undefined, folderPath: string, options: ListOptions = {}): Promise<Page<ResourceInfo>> {
    const { org, chain, row } = await this.locate(this.store.db, p, folderPath, 'read');
    if (!isFolderType(resourceTypeOf(row.type))) throw badRequest(`${folderPath} is not a folder`);
    const page = await listRows(this.store.db, this.store.kind, row, options);
    const readable = await readableRows(this.store.db, p, chain, page.rows);
    return { items: readable.map((r) => toResourceInfo(r, org.slug)), nextCursor: page.nextCursor };
  }

  async create(actor: Actor, parentPath: string, input: NewResourceInput): Promise<ResourceInfo> {
    checkName(input.name);
    const permissions = input.permissions && checkPermissions(input.permissions);
    if (input.type === 'organization_folder') throw badRequest('Organization folders come with their organization');
    if ((input.type === 'sequence') !== (input.sequence !== undefined)) throw badRequest('A sequence, and only a sequence, is created with sequence settings');
    if (input.content !== undefined && input.type !== 'file') throw badRequest('Only a file is created with content');
    const parsed = parseFullPath(parentPath);
    const org = await this.org(parsed.orgSlug);
    if (permissions) authorize(actor.principal, 'resource.share', { orgId: org.id });
    if (input.type === 'controller_folder') authorize(actor.principal, 'device.manage', { orgId: org.id });
    const id = newId('res');
    // Large content goes to blob storage before the transaction; only someone who may write there gets that far.
    let revision: Awaited<ReturnType<typeof prepareRevision>> | undefined;
    if (input.content !== undefined) {
      await this.writableFolder(this.store.db, actor.principal, org, parsed.relativePath, input.createParents);
      revision = await prepareRevision(this.blobs, this.blobThreshold, { id, orgId: org.id }, input.content, actorRef(actor.principal).id);
    }
    return this.store.transaction(async (tx) => {
      const { chain, missingNames } = await this.writableFolder(tx, actor.principal, org, parsed.relativePath, input.createParents);
      for (const name of missingNames) chain.push(await insertResource(tx, newResourceRow({ orgId: org.id, parent: chain[chain.length - 1]!, name, type: 'basic_folder' })));
      const values = { id, orgId: org.id, parent: chain[chain.length - 1]!, name: input.name, type: input.type, systemAttributes: input.systemAttributes, userAttributes: input.userAttributes, permissions };
      const row = input.type === 'controller_folder' ? await this.insertControllerFolder(tx, actor, values) : await insertResource(tx, newResourceRow(values));
      if (input.sequence) await insertSequence(tx, { id, orgId: org.id }, input.sequence, inheritedRrd(chain));
      if (revision) await this.addRevision(tx, id, revision);
      await recordAudit(tx, actor, { orgId: org.id, action: 'resource.create', target: { type: 'resource', id: row.id }, details: { path: fullPathOf(org.slug, row.path), type: input.type } });
      return toResourceInfo(await tx.selectFrom('resources').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow(), org.slug);
    });
  }

  async update(actor: Actor, path: string, changes: ResourceChanges): Promise<ResourceInfo> {
    const permissions = changes.permissions && checkPermissions(changes.permissions);
    if (changes.name !== undefined) checkName(changes.name);
    const target = await this.target(path);
    const parentTarget = changes.parentPath === undefined ? undefined : await this.target(changes.parentPath);
    return this.store.transaction(async (tx) => {
      const { org, chain, row } = await this.locateIn(tx, actor.principal, target, 'write');
      if (changes.permissions !== undefined) authorize(actor.principal, 'resource.share', { orgId: org.id });
      if (changes.name !== undefined || changes.parentPath !== undefined) {
        if (row.parent_id === null) throw badRequest("The organization's folder cannot be renamed or moved");
        const parent = parentTarget === undefined ? chain[chain.length - 2]! : await this.newParent(tx, actor.principal, org, row, parentTarget);
        const name = changes.name ?? row.name;
        if (parent.id !== row.parent_id || name !== row.name) await moveSubtree(tx, row, parent, name);
      }
      const values: Partial<ResourceRow> = { modified_at: nowIso() };
      if (changes.userAttributes !== undefined) values.user_attributes = JSON.stringify(changes.userAttributes);
      if (changes.systemAttributes !== undefined) values.system_attributes = JSON.stringify(mergeAttributes(JSON.parse(row.system_attributes) as Record<string, unknown>, changes.systemAttributes));
      if (changes.permissions !== undefined) values.permissions = permissions ? JSON.stringify(permissions) : null;
      if (changes.sequence !== undefined) {
        if (resourceTypeOf(row.type) !== 'sequence') throw badRequest(`${fullPathOf(org.slug, row.path)} is not a sequence`);
        await updateSequenceSettings(tx, row.id, changes.sequence);
      }
      await tx.updateTable('resources').set(values).where('id', '=', row.id).execute();
      const updated = await tx.selectFrom('resources').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow();
      await recordAudit(tx, actor, { orgId: org.id, action: 'resource.update', target: { type: 'resource', id: row.id }, details: { path: fullPathOf(org.slug, row.path), ...changes } });
      return toResourceInfo(updated, org.slug);
    });
  }

  /** Soft-deletes the resource and its subtree: the name is free again; the data stays in the store. */
  async delete(actor: Actor, path: string): Promise<void> {
    const target = await this.target(path);
    await this.store.transaction(async (tx) => {
      const { org, row } = await this.locateIn(tx, actor.principal, target, 'write');
      if (row.parent_id === null) throw badRequest("The organization's folder cannot be deleted");
      await deleteSubtree(tx, row);
      await recordAudit(tx, actor, { orgId: org.id, action: 'resource.delete', target: { type: 'resource', id: row.id }, details: { path: fullPathOf(org.slug, row.path) } });
    });
  }

  /** Stores new content of a file as its newest revision. */
  async writeFile(actor: Actor, path: string, content: Buffer): Promise<RevisionInfo> {
    const { org, row } = await this.locate(this.store.db, actor.principal, path, 'write');
    requireFile(row);
    const revision = await prepareRevision(this.blobs, this.blobThreshold, { id: row.id, orgId: org.id }, content, actorRef(actor.principal).id);
    return this.store.transaction(async (tx) => {
      const live = await tx.selectFrom('resources').select('id').where('id', '=', row.id).where('deleted', '=', 0).executeTakeFirst();
      if (!live) throw missing();
      return this.addRevision(tx, row.id, revision);
    });
  }

  /** A file's content: its newest revision, or the one asked for. */
  async readFile(p: Principal | undefined, path: string, revisionId?: string): Promise<{ resource: ResourceInfo; revision: RevisionInfo; content: Buffer }> {
    const { org, row } = await this.locate(this.store.db, p, path, 'read');
    requireFile(row);
    const id = revisionId ?? row.last_revision_id;
    if (id === null) throw new FleetError('not_found', `${path} has no content yet`);
    return { resource: toResourceInfo(row, org.slug), ...(await readRevision(this.store.db, this.blobs, row.id, id)) };
  }

  /** A file's revisions, oldest first. */
  async revisions(p: Principal | undefined, path: string, page: PageRequest): Promise<Page<RevisionInfo>> {
    const { row } = await this.locate(this.store.db, p, path, 'read');
    requireFile(row);
    return listRevisions(this.store.db, row.id, page);
  }

  /**
   * The folder of a device, for adapters that put the device's data there (they authorize the
   * device themselves). Devices made before the resource tree existed get theirs now.
   */
  async deviceFolder(deviceId: string): Promise<ResourceInfo> {
    const row = await this.store.transaction(async (tx) => {
      const existing = await findDeviceFolder(tx, deviceId);
      if (existing) return existing;
      const device = await tx.selectFrom('devices').select(['id', 'org_id', 'name']).where('id', '=', deviceId).executeTakeFirst();
      if (!device) throw notFound('Device');
      const id = await insertDeviceFolder(tx, { id: device.id, orgId: device.org_id, name: device.name });
      return tx.selectFrom('resources').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    });
    return toResourceInfo(row, (await this.organizations.resolve(row.org_id)).slug);
  }

  /** Finds the resource at a full path and checks the principal may `need` it. */
  private async locate(db: Db, p: Principal | undefined, fullPath: string, need: Need): Promise<Located> {
    return this.locateIn(db, p, await this.target(fullPath), need);
  }

  private async locateIn(db: Db, p: Principal | undefined, { org, relativePath }: Target, need: Need): Promise<Located> {
    const chain = await chainOf(db, org.id, relativePath);
    const row = chain[chain.length - 1]!;
    check(p, org.id, chain, need);
    if (row.path !== relativePath) throw missing();
    return { org, chain, row };
  }

  /**
   * The organization and relative path a full path names. Resolved before any transaction: the
   * organization cache reads through the store, and SQLite has one connection, which a transaction holds.
   */
  private async target(fullPath: string): Promise<Target> {
    const parsed = parseFullPath(fullPath);
    return { org: await this.org(parsed.orgSlug), relativePath: parsed.relativePath };
  }

  /** An organization named in a path; one that does not exist is a resource that does not, so nobody learns which organizations exist. */
  private async org(slug: string): Promise<Organization> {
    try {
      return await this.organizations.resolve(slug);
    } catch (error) {
      if (error instanceof FleetError && error.code === 'not_found') throw missing();
      throw error;
    }
  }

  /**
   * The chain down to the folder at `relativePath`, which the principal may write into. With
   * `createParents` the path may go on below the deepest folder that exists: that one must be
   * writable, and the names of the folders to make in it follow.
   */
  private async writableFolder(db: Db, p: Principal, org: Organization, relativePath: string, createParents = false): Promise<{ chain: ResourceRow[]; missingNames: string[] }> {
    const chain = await chainOf(db, org.id, relativePath);
    const deepest = chain[chain.length - 1]!;
    if (deepest.path !== relativePath && !createParents) throw missing();
    check(p, org.id, chain, 'write');
    if (!isFolderType(resourceTypeOf(deepest.type))) throw badRequest(`${fullPathOf(org.slug, deepest.path)} is not a folder`);
    const missingNames = relativePath.slice(deepest.path.length).split('/').filter((name) => name !== '');
    return { chain, missingNames };
  }

  /** The folder a resource moves into: writable, in the same organization, and not inside the resource itself. */
  private async newParent(tx: Db, p: Principal, org: Organization, row: ResourceRow, parentTarget: Target): Promise<ResourceRow> {
    if (parentTarget.org.id !== org.id) throw badRequest('Resources move only within their organization');
    const { row: parent } = await this.locateIn(tx, p, parentTarget, 'write');
    if (isWithin(parent.path, row.path)) throw badRequest('A folder cannot move into itself');
    if (!isFolderType(resourceTypeOf(parent.type))) throw badRequest(`${fullPathOf(org.slug, parent.path)} is not a folder`);
    return parent;
  }

  /**
   * A controller folder is a device: the device is made (with its folder, as every device is), and
   * its folder moved where it was asked for and given the attributes asked for.
   */
  private async insertControllerFolder(tx: Db, actor: Actor, values: NewResource & { parent: ResourceRow }): Promise<ResourceRow> {
    const path = childPath(values.parent.path, values.name);
    if (await findLive(tx, values.orgId, path)) throw conflict(`A resource named ${JSON.stringify(values.name)} exists already in that folder`);
    const device = await insertDevice(tx, values.orgId, { name: values.name });
    const folder = (await findDeviceFolder(tx, device.id))!;
    if (folder.path !== path) await moveSubtree(tx, folder, values.parent, values.name);
    const own = newResourceRow(values);
    await tx.updateTable('resources').set({ system_attributes: own.system_attributes, user_attributes: own.user_attributes, permissions: own.permissions }).where('id', '=', folder.id).execute();
    await recordAudit(tx, actor, { orgId: values.orgId, action: 'device.create', target: { type: 'device', id: device.id }, details: { name: device.name, folder: path } });
    return { ...folder, path };
  }

  private async addRevision(tx: Db, resourceId: string, revision: Awaited<ReturnType<typeof prepareRevision>>): Promise<RevisionInfo> {
    const info = await insertRevision(tx, revision);
    const row = await tx.selectFrom('resources').select('system_attributes').where('id', '=', resourceId).executeTakeFirstOrThrow();
    // rhizo gives a file's size (and hash) in its metadata from the system attributes.
    const attributes = { ...(JSON.parse(row.system_attributes) as Record<string, unknown>), size: info.size, sha256: info.sha256 };
    await tx.updateTable('resources').set({ last_revision_id: info.id, system_attributes: JSON.stringify(attributes), modified_at: info.createdAt }).where('id', '=', resourceId).execute();
    return info;
  }
}

/** The permission function's decision on the last resource of a chain; anonymous callers only have what public entries give. */
function check(p: Principal | undefined, orgId: string, chain: readonly ResourceRow[], need: Need): void {
  const permissions = permissionsOfChain(chain);
  if (p) authorize(p, need === 'read' ? 'resource.read' : 'resource.write', { orgId, permissions });
  else requireLevel(accessLevel(undefined, orgId, permissions), need === 'read' ? 10 : 20);
}

/**
 * System attributes are changed key by key (null removes one): fleetd keeps its own there (a file's
 * size and hash, a device folder's clock correction and watchdog state), which a change of others keeps.
 */
function mergeAttributes(current: Record<string, unknown>, changes: Record<string, unknown>): Record<string, unknown> {
  const merged = { ...current };
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

const asFleetError = (error: unknown): FleetError => (error instanceof FleetError ? error : new FleetError('internal', 'Could not find the resource', { cause: error }));

function requireFile(row: ResourceRow): void {
  if (resourceTypeOf(row.type) !== 'file') throw badRequest(`${row.name} is not a file`);
}
