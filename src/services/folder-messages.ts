import type { Config } from '../config/keys.ts';
import type { Principal } from '../core/access.ts';
import { badRequest, FleetError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Bus, BusSubscription, JsonValue } from '../hub/bus.ts';
import type { Logger } from '../log.ts';
import { nowIso } from '../store/page.ts';
import type { Store } from '../store/store.ts';
import type { ResourceInfo } from './resources/resource-info.ts';
import type { CommittedValue, Series } from './series/series.ts';

/** Who sent a folder message: a device (rhizo's controller), a user (directly or through a key), or fleetd itself. */
export interface FolderMessageSender {
  kind: 'device' | 'user' | 'server';
  id: string;
}

/** A message addressed to a folder, as every node delivers it. */
export interface FolderMessage {
  id: string;
  orgId: string;
  folderId: string;
  /** The folder's path below its organization ('' for the root, '/a/b'): subscriptions with children match by prefix. */
  folderPath: string;
  type: string;
  parameters: { [key: string]: JsonValue };
  sender: FolderMessageSender;
  /** ISO time it was sent. */
  at: string;
}

export type FolderMessageListener = (message: FolderMessage) => void;

/** One committed value on the bus: folder id, full sequence path, sequence id, time (ms), value (null for images). */
type UpdateEntry = [folderId: string, path: string, sequenceId: string, t: number, value: number | string | null];

/**
 * The sequence_update messages of one organization from one committed batch, as compact as the bus
 * carries them: the messages are made only on delivery, by the nodes with listeners of the
 * organization. Message `i` has the id `${id}.${i}`.
 */
interface UpdatesPayload {
  updates: { id: string; orgId: string; at: string; entries: UpdateEntry[] };
}

/** rhizo's column width for message types. */
export const maxTypeLength = 40;
/** Parameters are kept in the store and carried on the bus: far below the bus payload limit. */
export const maxParametersBytes = 64 * 1024;

const server: FolderMessageSender = { kind: 'server', id: 'fleetd' };
const subjectPrefix = 'fleetd.folders';
const pruneIntervalMs = 60_000;

/** Who a principal is as a sender: a key acts for its user, so a user's own messages never come back to any of their connections. */
export function senderOf(principal: Principal): FolderMessageSender {
  return principal.kind === 'device' ? { kind: 'device', id: principal.deviceId } : { kind: 'user', id: principal.userId };
}

/** The folder path (below the organization) of the folder holding `fullPath` ('/org/a/seq' → '/a'). */
function parentRelativePath(fullPath: string): string {
  const folder = fullPath.slice(0, fullPath.lastIndexOf('/'));
  const belowOrg = folder.indexOf('/', 1);
  return belowOrg < 0 ? '' : folder.slice(belowOrg);
}

/**
 * Messages addressed to folders (rhizo's messages): kept for folderMessageRetention, and sent to every
 * node over the bus, one subject per organization. A node hears its own messages from the bus too,
 * so each listener gets each message once whichever node it was sent on.
 *
 * `sequence_update` messages are not kept: the values they announce are, and a stored message per
 * value would double what ingest writes.
 */
export class FolderMessages {
  readonly #store: Store;
  readonly #bus: Bus;
  readonly #series: Pick<Series, 'onCommitted'>;
  readonly #logger: Logger;
  readonly #retentionMs: number;
  readonly #listeners = new Map<string, Set<FolderMessageListener>>();
  #subscription: BusSubscription | undefined;
  #pruning: NodeJS.Timeout | undefined;
  #stopUpdates: (() => void) | undefined;

  constructor(options: { store: Store; bus: Bus; series: Pick<Series, 'onCommitted'>; config: Pick<Config, 'folderMessageRetention'>; logger: Logger }) {
    this.#store = options.store;
    this.#bus = options.bus;
    this.#series = options.series;
    this.#logger = options.logger;
    this.#retentionMs = options.config.folderMessageRetention * 1000;
  }

  async start(): Promise<void> {
    this.#subscription = await this.#bus.subscribe(`${subjectPrefix}.*`, ({ payload }) => this.#deliver(payload));
    // Each stored value tells its folder, whether or not min_storage_interval kept it, as rhizo does.
    this.#stopUpdates = this.#series.onCommitted((values) => this.#publishUpdates(values));
    this.#pruning = setInterval(() => void this.prune().catch((error: unknown) => this.#logger.warn({ err: error }, 'folder message prune failed')), pruneIntervalMs);
    this.#pruning.unref();
  }

  /**
   * Stores a message on `folder` and sends it to the listeners of every node. The caller has checked
   * that `sender` may write to the folder.
   */
  async send(sender: Principal, folder: ResourceInfo, type: string, parameters: Record<string, unknown>): Promise<FolderMessage> {
    if (typeof type !== 'string' || type.length === 0 || [...type].length > maxTypeLength) throw badRequest(`A message type is 1 to ${maxTypeLength} characters`);
    if (parameters === null || typeof parameters !== 'object' || Array.isArray(parameters)) throw badRequest('Message parameters must be a JSON object');
    const text = JSON.stringify(parameters);
    const bytes = Buffer.byteLength(text);
    if (bytes > maxParametersBytes) {
      throw new FleetError('payload_too_large', `Message parameters are ${bytes} bytes, above the limit of ${maxParametersBytes}`, { details: { bytes, maxParametersBytes } });
    }
    const message: FolderMessage = {
      id: newId('fmsg'),
      orgId: folder.orgId,
      folderId: folder.id,
      folderPath: folder.relativePath,
      type,
      // Through JSON once, so that what is stored, sent and delivered is the same JSON value.
      parameters: JSON.parse(text) as FolderMessage['parameters'],
      sender: senderOf(sender),
      at: nowIso(),
    };
    await this.#store.db
      .insertInto('folder_messages')
      .values({ id: message.id, org_id: message.orgId, folder_id: message.folderId, type, parameters: text, sender_kind: message.sender.kind, sender_id: message.sender.id, at: message.at })
      .execute();
    this.#publish([message]);
    return message;
  }

  /** Every message of organization `orgId` reaching this node, once, in arrival order. Returns the unsubscribe. */
  listen(orgId: string, listener: FolderMessageListener): () => void {
    let listeners = this.#listeners.get(orgId);
    if (!listeners) this.#listeners.set(orgId, (listeners = new Set()));
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.#listeners.get(orgId) === listeners) this.#listeners.delete(orgId);
    };
  }

  /** Deletes the messages older than the retention (as of `now`); returns how many. */
  async prune(now = Date.now()): Promise<number> {
    const deleted = await this.#store.db.deleteFrom('folder_messages').where('at', '<', nowIso(now - this.#retentionMs)).executeTakeFirst();
    return Number(deleted.numDeletedRows);
  }

  /** Stops listening to the bus and to stored values, and pruning. */
  async close(): Promise<void> {
    this.#stopUpdates?.();
    clearInterval(this.#pruning);
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    this.#listeners.clear();
  }

  /** Announces committed values on the bus: one compact bus message per organization of the batch. */
  #publishUpdates(values: readonly CommittedValue[]): void {
    const at = nowIso();
    const byOrg = new Map<string, UpdateEntry[]>();
    for (const v of values) {
      const entry: UpdateEntry = [v.folderId, v.path, v.sequenceId, v.t, v.value];
      const list = byOrg.get(v.orgId);
      if (list) list.push(entry);
      else byOrg.set(v.orgId, [entry]);
    }
    for (const [orgId, entries] of byOrg) this.#sendUpdates(orgId, at, entries);
  }

  /** Sends entries in one bus message, or in halves when that is above the bus payload limit. */
  #sendUpdates(orgId: string, at: string, entries: UpdateEntry[]): void {
    const payload: UpdatesPayload = { updates: { id: newId('fmsg'), orgId, at, entries } };
    try {
      this.#bus.publish(`${subjectPrefix}.${orgId}`, payload);
    } catch (error) {
      if (error instanceof FleetError && error.code === 'payload_too_large' && entries.length > 1) {
        const half = Math.ceil(entries.length / 2);
        this.#sendUpdates(orgId, at, entries.slice(0, half));
        this.#sendUpdates(orgId, at, entries.slice(half));
        return;
      }
      this.#logger.warn({ err: error, orgId, count: entries.length }, 'sequence updates not sent on the bus');
    }
  }

  /**
   * Sends messages on the bus, grouped by organization, in as few bus messages as the payload limit
   * allows: a burst of stored values becomes a few bus messages rather than one per value.
   */
  #publish(messages: FolderMessage[]): void {
    const byOrg = new Map<string, FolderMessage[]>();
    for (const message of messages) {
      const list = byOrg.get(message.orgId);
      if (list) list.push(message);
      else byOrg.set(message.orgId, [message]);
    }
    // Room for the array around the messages.
    const budget = this.#bus.maxPayload - 16;
    for (const [orgId, list] of byOrg) {
      let chunk: FolderMessage[] = [];
      let size = 0;
      const flush = () => {
        if (chunk.length > 0) this.#send(orgId, chunk);
        chunk = [];
        size = 0;
      };
      for (const message of list) {
        const bytes = Buffer.byteLength(JSON.stringify(message)) + 1;
        if (bytes > budget) {
          this.#logger.warn({ type: message.type, folder: message.folderId, bytes }, 'folder message too large for the bus: not delivered');
          continue;
        }
        if (size + bytes > budget) flush();
        chunk.push(message);
        size += bytes;
      }
      flush();
    }
  }

  #send(orgId: string, messages: FolderMessage[]): void {
    try {
      this.#bus.publish(`${subjectPrefix}.${orgId}`, messages);
    } catch (error) {
      // A stored message stays stored; only its live delivery is lost, as when a node misses a bus message.
      this.#logger.warn({ err: error, orgId, count: messages.length }, 'folder messages not sent on the bus');
    }
  }

  #deliver(payload: JsonValue): undefined {
    if (Array.isArray(payload)) {
      for (const message of payload as unknown as FolderMessage[]) this.#notify(message);
    } else if (isUpdates(payload)) {
      const { id, orgId, at, entries } = payload.updates;
      // Messages only for the organizations someone here listens to.
      if (!this.#listeners.has(orgId)) return undefined;
      entries.forEach(([folderId, path, sequenceId, t, value], index) => {
        this.#notify({
          id: `${id}.${index}`,
          orgId,
          folderId,
          folderPath: parentRelativePath(path),
          type: 'sequence_update',
          parameters: { id: sequenceId, name: path, timestamp: new Date(t).toISOString(), ...(value !== null && { value }) },
          sender: server,
          at,
        });
      });
    }
    return undefined;
  }

  #notify(message: FolderMessage): void {
    const listeners = this.#listeners.get(message.orgId);
    if (!listeners) return;
    for (const listener of listeners) {
      try {
        listener(message);
      } catch (error) {
        this.#logger.error({ err: error, message: message.id, type: message.type }, 'folder message listener failed');
      }
    }
  }
}

const isUpdates = (payload: JsonValue): payload is JsonValue & UpdatesPayload =>
  typeof payload === 'object' && payload !== null && !Array.isArray(payload) && typeof payload.updates === 'object' && payload.updates !== null && Array.isArray((payload.updates as { entries?: unknown }).entries);
