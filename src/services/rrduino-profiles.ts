import { authorize, type Principal } from '../core/access.ts';
import { badRequest, conflict, FleetError, notFound } from '../core/errors.ts';
import { defaultRrdArguments, parseRrdArguments, rrdDefinition } from '../core/rrd.ts';
import { parseUpdateTemplate, type UpdateField } from '../core/rrd-update-template.ts';
import { sha256 } from '../core/secrets.ts';
import type { Database } from '../store/schema.ts';
import { isUniqueViolation, type Db, type Store } from '../store/store.ts';
import { maxPageSize, nowIso, type Page, type PageRequest } from '../store/page.ts';
import type { Actor } from './actor.ts';
import { recordAudit } from './audit.ts';
import { findDevice, insertDevice } from './devices.ts';
import type { Organizations } from './organizations.ts';
import type { ResourceInfo, ResourceTree } from './resources/tree.ts';
import { sequenceInfo, updateSequenceSettings } from './series/settings.ts';

/**
 * rrduino clients (rrduino.md): a profile maps a client id to a device of an organization, the
 * client's pre-shared key, and what `rrdtool create` would have made of its data. Each data source
 * becomes a numeric sequence of the device's folder, named as the data source; a profile naming
 * none gets a sequence per key of the client's lines, made when the key first arrives.
 */

export interface RrduinoProfile {
  clientId: string;
  orgId: string;
  deviceId: string;
  /** rrdtool create arguments as given (`--step`, `DS:`, `RRA:`). */
  rrdArguments: string[];
  /** rrduino's update template, when one was given; else each data source reads the key named as it. */
  updateTemplate: string | null;
  /** The data sources of rrdArguments: the sequences of the device folder the client writes. */
  sources: string[];
  createdAt: string;
  updatedAt: string;
}

export interface NewRrduinoProfile {
  clientId: string;
  /** The pre-shared key; only its SHA-256 (the protocol's master key) is kept. */
  key: string;
  /** An existing device of the organization; else the device named as the client, made when missing. */
  deviceId?: string;
  rrdArguments?: string[];
  updateTemplate?: string | null;
}

export interface RrduinoProfileChanges {
  key?: string;
  rrdArguments?: string[];
  updateTemplate?: string | null;
}

/** rrduino's own profile file (`<PROFILE_DIR>/<client_id>.json`), accepted as it is. */
export interface RrduinoProfileFile {
  key: string;
  handler?: string;
  handler_options?: { path?: string; create?: string[]; update?: string };
}

/** What the rrduino listener needs of a client: its keys, where its readings go, and the profile it was keyed with. */
export interface RrduinoClient {
  clientId: string;
  orgId: string;
  deviceId: string;
  master: Buffer;
  /** Per data source, the key of an update line it reads; empty when every key is a sequence of its own. */
  fields: UpdateField[];
  principal: Principal;
  /** The stored row as read at the hello: a session keyed with a changed profile is over. */
  row: ProfileRow;
}

type ProfileRow = Database['rrduino_profiles'];

/** Client ids become file names upstream and sequence paths here: a safe charset only. */
export const clientIdPattern = '^[A-Za-z0-9_.-]{1,64}$';
const clientIdRegExp = new RegExp(clientIdPattern);
/** Names of sequences made for the keys of a profile without data sources: no dot first, so never `.` or `..`. */
const dynamicKeyPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
export const maxKeyLength = 256;

export const isClientId = (text: string): boolean => clientIdRegExp.test(text);

/** What an rrduino profile file says, as a new profile of `clientId`. */
export function fromProfileFile(clientId: string, file: RrduinoProfileFile): NewRrduinoProfile {
  // Upstream dispatches to its default handler whatever the file names; another class is another protocol.
  if (file.handler !== undefined && file.handler !== 'RRDuinoHandler') throw badRequest(`Handler ${JSON.stringify(file.handler)} is not RRDuinoHandler`);
  const options = file.handler_options;
  if (options === undefined) return { clientId, key: file.key };
  // Upstream refuses a profile missing any of the three; the rrd file path has no meaning here.
  if (!options.path || !options.create?.length || !options.update) throw badRequest('handler_options needs path, create and update');
  return { clientId, key: file.key, rrdArguments: options.create, updateTemplate: options.update };
}

interface ArchivePlan {
  sources: string[];
  fields: UpdateField[];
  /** The create arguments of the sequence of one data source, or of a key when there are none. */
  argumentsFor(source: string | undefined): string[] | undefined;
}

/**
 * Checks what a profile says of its archives, and splits it into one definition per data source.
 * Arguments without an RRA get fleetd's default archives (and step, unless they give one), since
 * rrdtool itself would refuse them.
 */
function archivePlan(rrdArguments: readonly string[], updateTemplate: string | null): ArchivePlan {
  const parsed = parseRrdArguments(rrdArguments);
  const sources = parsed.sources.map((s) => s.name);
  const base = parsed.archives.length > 0 ? [] : defaultRrdArguments.filter((arg) => !arg.startsWith('DS:'));
  const argumentsFor = (source: string | undefined) => {
    if (rrdArguments.length === 0) return undefined;
    const own = rrdArguments.filter((arg) => !arg.startsWith('DS:') || arg.split(':')[1] === source);
    return [...base, ...own];
  };
  for (const source of sources) rrdDefinition(argumentsFor(source));
  if (sources.length === 0 && rrdArguments.length > 0) rrdDefinition(argumentsFor(undefined));
  if (updateTemplate !== null && sources.length === 0) throw badRequest('An update template needs data sources (DS:...) to fill');
  const fields = updateTemplate === null ? sources.map((source) => ({ source, key: source })) : parseUpdateTemplate(updateTemplate, sources);
  return { sources, fields, argumentsFor };
}

function checkKey(key: string): void {
  if (key.length === 0 || key.length > maxKeyLength) throw badRequest(`The key must be 1 to ${maxKeyLength} characters`);
}

function toProfile(row: ProfileRow): RrduinoProfile {
  const rrdArguments = JSON.parse(row.rrd_arguments) as string[];
  return {
    clientId: row.client_id,
    orgId: row.org_id,
    deviceId: row.device_id,
    rrdArguments,
    updateTemplate: row.update_template,
    sources: parseRrdArguments(rrdArguments).sources.map((s) => s.name),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

const encodeCursor = (clientId: string) => Buffer.from(clientId).toString('base64url');

function decodeCursor(cursor: string): string {
  const clientId = Buffer.from(cursor, 'base64url').toString();
  if (!isClientId(clientId)) throw badRequest('cursor is not one this server gave out');
  return clientId;
}

export class RrduinoProfiles {
  private readonly store: Store;
  private readonly organizations: Organizations;
  private readonly resources: ResourceTree;

  constructor(options: { store: Store; organizations: Organizations; resources: ResourceTree }) {
    this.store = options.store;
    this.organizations = options.organizations;
    this.resources = options.resources;
  }

  /**
   * Makes a profile and its device (unless given or found by name), then the sequence of each data
   * source in the device folder. The key is in no result: only its hash is stored.
   */
  async create(actor: Actor, orgIdOrSlug: string, input: NewRrduinoProfile): Promise<RrduinoProfile> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'device.manage', { orgId: org.id });
    if (!isClientId(input.clientId)) throw badRequest(`Client id ${JSON.stringify(input.clientId)} must be 1 to 64 letters, digits, _ . or -`);
    checkKey(input.key);
    const rrdArguments = input.rrdArguments ?? [];
    const updateTemplate = input.updateTemplate ?? null;
    const plan = archivePlan(rrdArguments, updateTemplate);
    const profile = await this.store.transaction(async (tx) => {
      const deviceId = await this.deviceFor(tx, actor, org.id, input);
      const now = nowIso();
      const row: ProfileRow = {
        client_id: input.clientId,
        org_id: org.id,
        device_id: deviceId,
        master_key: sha256(input.key),
        rrd_arguments: JSON.stringify(rrdArguments),
        update_template: updateTemplate,
        created_at: now,
        updated_at: now,
      };
      try {
        await tx.insertInto('rrduino_profiles').values(row).execute();
      } catch (error) {
        // Client ids name connections, which say nothing of their organization: unique across all.
        if (isUniqueViolation(error)) throw conflict(`An rrduino client ${JSON.stringify(input.clientId)} exists already`);
        throw error;
      }
      await recordAudit(tx, actor, {
        orgId: org.id,
        action: 'rrduino_profile.create',
        target: { type: 'rrduino_profile', id: row.client_id },
        details: { deviceId, rrdArguments, updateTemplate },
      });
      return toProfile(row);
    });
    await this.ensureSequences(actor, profile, plan);
    return profile;
  }

  async list(principal: Principal, orgIdOrSlug: string, page: PageRequest): Promise<Page<RrduinoProfile>> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(principal, 'device.manage', { orgId: org.id });
    const limit = Math.min(page.limit ?? 50, maxPageSize);
    let query = this.store.db.selectFrom('rrduino_profiles').selectAll().where('org_id', '=', org.id);
    if (page.cursor) query = query.where('client_id', '>', decodeCursor(page.cursor));
    const rows = await query.orderBy('client_id').limit(limit + 1).execute();
    const items = rows.slice(0, limit).map(toProfile);
    return { items, nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1]!.clientId) : null };
  }

  async get(principal: Principal, orgIdOrSlug: string, clientId: string): Promise<RrduinoProfile> {
    return toProfile(await this.managed(principal, orgIdOrSlug, clientId));
  }

  /**
   * A new key, or new archives: data sources that are new get their sequence, those whose
   * definition changed get the new archives (rebuilt from the next value on), the others keep theirs.
   * Sessions keyed with the old profile end at their next line; the client says hello again.
   */
  async update(actor: Actor, orgIdOrSlug: string, clientId: string, changes: RrduinoProfileChanges): Promise<RrduinoProfile> {
    const current = await this.managed(actor.principal, orgIdOrSlug, clientId);
    if (changes.key !== undefined) checkKey(changes.key);
    const rrdArguments = changes.rrdArguments ?? (JSON.parse(current.rrd_arguments) as string[]);
    const updateTemplate = changes.updateTemplate === undefined ? current.update_template : changes.updateTemplate;
    const plan = archivePlan(rrdArguments, updateTemplate);
    const values: Partial<ProfileRow> = { rrd_arguments: JSON.stringify(rrdArguments), update_template: updateTemplate, updated_at: nowIso() };
    if (changes.key !== undefined) values.master_key = sha256(changes.key);
    const profile = await this.store.transaction(async (tx) => {
      await tx.updateTable('rrduino_profiles').set(values).where('client_id', '=', clientId).execute();
      await recordAudit(tx, actor, {
        orgId: current.org_id,
        action: 'rrduino_profile.update',
        target: { type: 'rrduino_profile', id: clientId },
        details: { newKey: changes.key !== undefined, rrdArguments: changes.rrdArguments, updateTemplate: changes.updateTemplate },
      });
      return toProfile({ ...current, ...values });
    });
    if (changes.rrdArguments !== undefined) await this.ensureSequences(actor, profile, plan);
    return profile;
  }

  /** Forgets the client; its device, folder and values stay. Its sessions end at their next line. */
  async delete(actor: Actor, orgIdOrSlug: string, clientId: string): Promise<void> {
    const current = await this.managed(actor.principal, orgIdOrSlug, clientId);
    await this.store.transaction(async (tx) => {
      await tx.deleteFrom('rrduino_profiles').where('client_id', '=', clientId).execute();
      await recordAudit(tx, actor, { orgId: current.org_id, action: 'rrduino_profile.delete', target: { type: 'rrduino_profile', id: clientId }, details: { deviceId: current.device_id } });
    });
  }

  /** The client a hello names, for the listener (which authenticates it by its MACs); undefined when unknown. */
  async client(clientId: string): Promise<RrduinoClient | undefined> {
    if (!isClientId(clientId)) return undefined;
    const row = await this.store.db.selectFrom('rrduino_profiles').selectAll().where('client_id', '=', clientId).executeTakeFirst();
    if (!row) return undefined;
    const plan = archivePlan(JSON.parse(row.rrd_arguments) as string[], row.update_template);
    return {
      clientId: row.client_id,
      orgId: row.org_id,
      deviceId: row.device_id,
      master: Buffer.from(row.master_key, 'hex'),
      fields: plan.fields,
      principal: { kind: 'device', deviceId: row.device_id, orgId: row.org_id, keyId: 'rrduino' },
      row,
    };
  }

  /** Whether the client's profile is still the one its session was keyed with. */
  async isCurrent(client: RrduinoClient): Promise<boolean> {
    const row = await this.store.db.selectFrom('rrduino_profiles').selectAll().where('client_id', '=', client.clientId).executeTakeFirst();
    return row !== undefined && (Object.keys(row) as Array<keyof ProfileRow>).every((column) => row[column] === client.row[column]);
  }

  /**
   * The sequence the client's readings named `name` go to, in its device folder, as the device may
   * write it; made when missing (a new key of a profile without data sources, or a sequence someone
   * removed), with the profile's archives.
   */
  async sequenceId(client: RrduinoClient, name: string): Promise<string> {
    const plan = archivePlan(JSON.parse(client.row.rrd_arguments) as string[], client.row.update_template);
    if (plan.sources.length === 0 && !dynamicKeyPattern.test(name)) throw badRequest(`Key ${JSON.stringify(name)} cannot name a sequence`);
    const actor: Actor = { principal: client.principal };
    const folder = await this.resources.deviceFolder(client.deviceId);
    return (await this.sequenceIn(actor, folder, name, plan.argumentsFor(plan.sources.length === 0 ? undefined : name))).id;
  }

  private async ensureSequences(actor: Actor, profile: RrduinoProfile, plan: ArchivePlan): Promise<void> {
    if (plan.sources.length === 0) return;
    const folder = await this.resources.deviceFolder(profile.deviceId);
    for (const source of plan.sources) {
      const rrd = plan.argumentsFor(source)!;
      const sequence = await this.sequenceIn(actor, folder, source, rrd);
      // Archives rebuilt lose their rows: only those whose definition changed are.
      const info = await sequenceInfo(this.store.db, sequence.id);
      if (info && JSON.stringify(info.rrd) !== JSON.stringify(rrdDefinition(rrd))) await updateSequenceSettings(this.store.db, sequence.id, { rrd });
    }
  }

  /** The numeric sequence `name` of a folder, made when missing; a concurrent maker's is taken. */
  private async sequenceIn(actor: Actor, folder: ResourceInfo, name: string, rrd: string[] | undefined): Promise<ResourceInfo> {
    const path = `${folder.path}/${name}`;
    const existing = await this.existing(actor.principal, path);
    if (existing) return sequenceOrRefuse(existing);
    try {
      return await this.resources.create(actor, folder.path, { name, type: 'sequence', sequence: { dataType: 'numeric', ...(rrd && { rrd }) } });
    } catch (error) {
      if (!(error instanceof FleetError && error.code === 'conflict')) throw error;
      const made = await this.existing(actor.principal, path);
      if (!made) throw error;
      return sequenceOrRefuse(made);
    }
  }

  private async existing(principal: Principal, path: string): Promise<ResourceInfo | undefined> {
    try {
      return await this.resources.resolve(principal, path, 'write');
    } catch (error) {
      if (error instanceof FleetError && error.code === 'not_found') return undefined;
      throw error;
    }
  }

  /**
   * The device a new profile belongs to: the one given, else the organization's only device named
   * as the client, else a new one. Several of that name are ambiguous: the caller says which.
   */
  private async deviceFor(tx: Db, actor: Actor, orgId: string, input: NewRrduinoProfile): Promise<string> {
    if (input.deviceId !== undefined) {
      if (!(await findDevice(tx, orgId, input.deviceId))) throw notFound('Device');
      return input.deviceId;
    }
    const named = await tx.selectFrom('devices').select('id').where('org_id', '=', orgId).where('name', '=', input.clientId).limit(2).execute();
    if (named.length > 1) throw conflict(`Several devices are named ${JSON.stringify(input.clientId)}: give deviceId`);
    if (named.length === 1) return named[0]!.id;
    const device = await insertDevice(tx, orgId, { name: input.clientId, model: 'rrduino' });
    await recordAudit(tx, actor, { orgId, action: 'device.create', target: { type: 'device', id: device.id }, details: { name: device.name, via: 'rrduino' } });
    return device.id;
  }

  /** The profile, when the principal manages the organization's devices; others' are not found. */
  private async managed(principal: Principal, orgIdOrSlug: string, clientId: string): Promise<ProfileRow> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(principal, 'device.manage', { orgId: org.id });
    const row = await this.store.db.selectFrom('rrduino_profiles').selectAll().where('org_id', '=', org.id).where('client_id', '=', clientId).executeTakeFirst();
    if (!row) throw notFound('rrduino client');
    return row;
  }
}

function sequenceOrRefuse(resource: ResourceInfo): ResourceInfo {
  if (resource.type !== 'sequence') throw conflict(`${resource.path} exists and is not a sequence`);
  return resource;
}
