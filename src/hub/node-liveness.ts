import { sql, type RawBuilder } from 'kysely';
import type { Logger } from '../log.ts';
import { nowIso } from '../store/page.ts';
import type { Db, Store } from '../store/store.ts';
import type { EventStream } from './events.ts';

/**
 * How often a node writes its heartbeat. Not a configuration key: it only bounds how long the devices
 * of a crashed node stay online, and every 10 s is one cheap update per node, quicker than anybody
 * watching a fleet would notice.
 */
export const defaultHeartbeatMs = 10_000;
/**
 * A node is taken for dead after three missed heartbeats (30 s by default), so that one slow write or
 * a short pause of the process (garbage collection, a busy database) does not take the devices of a
 * live node offline.
 */
const missedHeartbeats = 3;

interface DeviceRow {
  id: string;
  org_id: string;
}

/**
 * The database's clock as ISO-8601 UTC text with milliseconds (what nowIso() writes), `offsetMs`
 * from now. Heartbeats are written and judged by this one clock, so that a node whose own clock is
 * off is neither taken for dead nor kept alive by it.
 */
function databaseTime(kind: Store['kind'], offsetMs = 0): RawBuilder<string> {
  if (kind === 'postgres') {
    return sql<string>`to_char((statement_timestamp() + cast(${offsetMs} as integer) * interval '1 millisecond') at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
  }
  return sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ${`${offsetMs / 1000} seconds`})`;
}

/**
 * Closes the shell sessions whose operator socket was on `node`, or with no node given, on any node
 * that hub_nodes no longer lists: that node cannot record their end any more.
 */
async function closeShellSessions(db: Db, node?: string): Promise<void> {
  let update = db.updateTable('shell_sessions').set({ status: 'closed', closed_at: nowIso(), close_reason: 'node_lost' }).where('status', '!=', 'closed');
  update = node !== undefined ? update.where('node', '=', node) : update.where(({ not, exists, selectFrom }) => not(exists(selectFrom('hub_nodes').select('hub_nodes.id').whereRef('hub_nodes.id', '=', 'shell_sessions.node'))));
  await update.execute();
}

/**
 * Which nodes are alive. Each node keeps a row of hub_nodes with its heartbeat; every node sweeps the
 * rows whose heartbeat stopped (a crash, a power loss: nothing took the node's devices offline) and
 * takes their devices offline, device.offline {node, reason: 'node_lost'}. Several nodes may sweep
 * the same dead node at once: deleting its row is the claim, and the update of each device is
 * conditional, so each device goes offline, and is announced, once.
 */
export class NodeLiveness {
  readonly #store: Store;
  readonly #events: EventStream;
  readonly #nodeId: string;
  readonly #logger: Logger;
  readonly #heartbeatMs: number;
  readonly #deadAfterMs: number;
  readonly #sweptListeners: Array<() => Promise<void>> = [];
  #timer: NodeJS.Timeout | undefined;
  /** The heartbeat and sweep under way: at most one at a time, and close() waits for it. */
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(options: { store: Store; events: EventStream; nodeId: string; logger: Logger; heartbeatMs?: number; deadAfterMs?: number }) {
    this.#store = options.store;
    this.#events = options.events;
    this.#nodeId = options.nodeId;
    this.#logger = options.logger;
    this.#heartbeatMs = options.heartbeatMs ?? defaultHeartbeatMs;
    this.#deadAfterMs = options.deadAfterMs ?? missedHeartbeats * this.#heartbeatMs;
    if (!(this.#heartbeatMs > 0 && this.#deadAfterMs > this.#heartbeatMs)) throw new RangeError('A node is taken for dead after more than one heartbeat interval');
  }

  /**
   * Writes this node's row, then takes offline the devices of nodes that are gone: those named by no
   * row (a crash from before hub_nodes, or a node already swept) and those whose heartbeat stopped.
   * Call it before this node links any device. Only the first write may fail it.
   */
  async start(): Promise<void> {
    await this.#insertSelf();
    this.#running = this.#guard(async () => {
      await this.#clearOrphans();
      await closeShellSessions(this.#store.db);
      await this.#sweep();
    });
    await this.#running;
    this.#running = undefined;
    if (this.#closed) return;
    this.#timer = setInterval(() => this.#tick(), this.#heartbeatMs);
    this.#timer.unref();
  }

  /**
   * Calls `listener` when this node finds that another node took it for dead (it missed its
   * heartbeats: paused, or cut off from the database) and took its devices offline: the node is
   * alive after all, and writes back the devices it still holds.
   */
  onSwept(listener: () => Promise<void>): void {
    this.#sweptListeners.push(listener);
  }

  /** A clean stop: stops the heartbeat and deletes this node's row (its devices are offline already). */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#running;
    try {
      await this.#store.db.deleteFrom('hub_nodes').where('id', '=', this.#nodeId).execute();
    } catch (error) {
      // The row stays behind and another node sweeps it once its heartbeat is old enough.
      this.#logger.warn({ err: error, node: this.#nodeId }, 'could not remove this node from hub_nodes');
    }
  }

  #tick(): void {
    if (this.#running || this.#closed) return;
    this.#running = this.#guard(async () => {
      await this.#beat();
      await this.#sweep();
    }).finally(() => {
      this.#running = undefined;
    });
  }

  /** Logs what fails: a timer has nobody to throw to, and the next tick tries again. */
  async #guard(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.#logger.error({ err: error, node: this.#nodeId }, 'node liveness: heartbeat or sweep failed');
    }
  }

  async #insertSelf(): Promise<void> {
    const now = databaseTime(this.#store.kind);
    await this.#store.db
      .insertInto('hub_nodes')
      .values({ id: this.#nodeId, started_at: now, seen_at: now })
      .onConflict((oc) => oc.column('id').doUpdateSet({ seen_at: now }))
      .execute();
  }

  async #beat(): Promise<void> {
    const beat = await this.#store.db.updateTable('hub_nodes').set({ seen_at: databaseTime(this.#store.kind) }).where('id', '=', this.#nodeId).executeTakeFirst();
    if (beat.numUpdatedRows > 0n || this.#closed) return;
    // Swept: the sweeping node deleted the row and took the devices offline in one transaction, so
    // whatever this node writes from here on is not undone by that sweep.
    this.#logger.warn({ node: this.#nodeId }, 'another node took this node for dead and took its devices offline; writing them back');
    await this.#insertSelf();
    for (const listener of this.#sweptListeners) {
      try {
        await listener();
      } catch (error) {
        this.#logger.error({ err: error, node: this.#nodeId }, 'could not write back the devices of this node');
      }
    }
  }

  /** Takes offline the devices of every other node whose heartbeat is older than deadAfterMs. */
  async #sweep(): Promise<void> {
    const dead = await this.#store.db
      .selectFrom('hub_nodes')
      .select('id')
      .where('id', '!=', this.#nodeId)
      .where('seen_at', '<', databaseTime(this.#store.kind, -this.#deadAfterMs))
      .execute();
    for (const node of dead) {
      if (this.#closed) return;
      try {
        await this.#announce(node.id, await this.#takeOffline(node));
      } catch (error) {
        this.#logger.error({ err: error, node: this.#nodeId, deadNode: node.id }, 'could not take the devices of a dead node offline');
      }
    }
  }

  /**
   * Deletes the dead node's row, if its heartbeat is still old (it did not come back, no other node
   * swept it first), and clears its devices, in one transaction. Returns the devices cleared here.
   */
  async #takeOffline(node: { id: string }): Promise<DeviceRow[]> {
    // Not store.transaction(): nothing here is cached identity data the other nodes must forget.
    return await this.#store.db.transaction().execute(async (tx) => {
      const claimed = await tx
        .deleteFrom('hub_nodes')
        .where('id', '=', node.id)
        .where('seen_at', '<', databaseTime(this.#store.kind, -this.#deadAfterMs))
        .returning('seen_at')
        .executeTakeFirst();
      if (!claimed) return [];
      this.#logger.warn({ node: this.#nodeId, deadNode: node.id, seenAt: claimed.seen_at }, 'a node stopped its heartbeat: taking its devices offline');
      await closeShellSessions(tx, node.id);
      return await this.#clear(tx, node.id, { lastSeen: claimed.seen_at });
    });
  }

  /** Devices whose connected_node names no row of hub_nodes: their node is gone, and nobody will sweep it. */
  async #clearOrphans(): Promise<void> {
    const orphans = await this.#store.db
      .selectFrom('devices')
      .select('connected_node')
      .distinct()
      .where('connected_node', 'is not', null)
      .where(({ not, exists, selectFrom }) => not(exists(selectFrom('hub_nodes').select('hub_nodes.id').whereRef('hub_nodes.id', '=', 'devices.connected_node'))))
      .execute();
    for (const { connected_node: node } of orphans) {
      if (this.#closed || node === null) continue;
      // One statement, so that a node writing its row meanwhile (it does before it links any device) keeps its devices.
      const cleared = await this.#clear(this.#store.db, node, { unlessListed: true });
      if (cleared.length > 0) this.#logger.warn({ node: this.#nodeId, deadNode: node, devices: cleared.length }, 'devices of a node that is gone: taken offline');
      await this.#announce(node, cleared);
    }
  }

  /**
   * Clears the devices still naming `node`; returns exactly those this update changed, so that a device
   * another node cleared or took meanwhile is not announced here. `lastSeen`: the node's last heartbeat,
   * the last time its devices were known to be connected. `unlessListed`: only while hub_nodes has no row
   * for the node.
   */
  async #clear(db: Db, node: string, options: { lastSeen?: string; unlessListed?: boolean }): Promise<DeviceRow[]> {
    const { lastSeen, unlessListed } = options;
    let update = db.updateTable('devices').set({ connected_node: null }).where('connected_node', '=', node);
    if (unlessListed) update = update.where(({ not, exists, selectFrom }) => not(exists(selectFrom('hub_nodes').select('hub_nodes.id').where('hub_nodes.id', '=', node))));
    if (lastSeen !== undefined) {
      update = update.set((eb) => ({
        last_seen_at: eb
          .case()
          .when(eb.or([eb('last_seen_at', 'is', null), eb('last_seen_at', '<', lastSeen)]))
          .then(lastSeen)
          .else(eb.ref('last_seen_at'))
          .end(),
      }));
    }
    return await update.returning(['id', 'org_id']).execute();
  }

  /** The store is what counts: a device whose event could not be published is offline all the same. */
  async #announce(node: string, devices: DeviceRow[]): Promise<void> {
    for (const device of devices) {
      await this.#events
        .publish({ orgId: device.org_id, deviceId: device.id, name: 'device.offline', data: { node, reason: 'node_lost' } })
        .catch((error: unknown) => this.#logger.warn({ err: error, node: this.#nodeId, deviceId: device.id }, 'could not publish that a device of a dead node is offline'));
    }
  }
}
