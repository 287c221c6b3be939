import type { BlobStore } from '../../blob/blob-store.ts';
import type { Config } from '../../config/keys.ts';
import type { Principal } from '../../core/access.ts';
import { badRequest, FleetError, notFound } from '../../core/errors.ts';
import type { EventStream } from '../../hub/events.ts';
import type { Logger } from '../../log.ts';
import type { Database } from '../../store/schema.ts';
import type { Store } from '../../store/store.ts';
import { systemActor, type Actor } from '../actor.ts';
import type { ResourceInfo, ResourceTree } from '../resources/tree.ts';
import { correctDeviceTime } from './clock-correction.ts';
import { IngestQueue } from './ingest-queue.ts';
import { consolidatedValues, lastValue, rawValues, type ConsolidatedQuery, type ConsolidatedSeries, type RawQuery, type SeriesValue } from './queries.ts';
import { pruneSequences } from './retention.ts';
import { SequenceHeads } from './sequence-heads.ts';
import { SequencePaths } from './sequence-paths.ts';
import type { SequenceDataType } from './settings.ts';
import { stateFields, stateMatcher } from './state-fields.ts';
import { StateRecorder } from './state-recorder.ts';
import { writeBatch, type CommittedValue, type IngestResult, type IngestValue } from './write-batch.ts';

export type { CommittedValue, IngestResult, IngestValue } from './write-batch.ts';
export type { ConsolidatedQuery, ConsolidatedSeries, RawQuery, SeriesValue } from './queries.ts';

export type SeriesConfig = Pick<Config, 'blobThreshold' | 'cacheTtl' | 'ingestBatchSize' | 'ingestFlushInterval' | 'ingestQueueSize' | 'retentionInterval' | 'stateSequences'>;

export interface SeriesOptions {
  store: Store;
  resources: ResourceTree;
  blobs: BlobStore;
  config: SeriesConfig;
  logger: Logger;
  /** Where device state changes come from; without it nothing is recorded from device state. */
  events?: Pick<EventStream, 'onPublished'>;
}

/** What a query answers besides the values: how to show them. */
export interface SequenceDescription {
  path: string;
  dataType: SequenceDataType;
  units: string | null;
  decimalPlaces: number | null;
}

export interface BulkValues {
  /** Values by full sequence path. */
  values: Record<string, unknown>;
  /** Time of every value (ms); now when missing. */
  timestamp?: number;
  /** The timestamp is the calling device's clock, corrected for drift as rhizo does (default: when the caller is a device). */
  deviceClock?: boolean;
}

export type RecordResult = { stored: boolean } | { error: FleetError };

/** Seconds of device clock lag the retention still counts values for (see pruneSequences). */
const historyMarginMs = 86_400_000;

/**
 * The time series of sequences: batched ingest acknowledged once committed, raw, consolidated and
 * last-value queries through the resource tree's permissions, retention, and the recording of
 * device state into sequences.
 */
export class Series {
  readonly #store: Store;
  readonly #resources: ResourceTree;
  readonly #blobs: BlobStore;
  readonly #config: SeriesConfig;
  readonly #logger: Logger;
  readonly #events: Pick<EventStream, 'onPublished'> | undefined;
  readonly #queue: IngestQueue<IngestValue, IngestResult>;
  readonly #committedListeners = new Set<(values: CommittedValue[]) => void>();
  readonly #recorder: StateRecorder;
  readonly #heads: SequenceHeads;
  readonly #paths: SequencePaths;
  #stopRecording: (() => void) | undefined;
  #retention: NodeJS.Timeout | undefined;
  #pruning: Promise<unknown> | undefined;
  #lastPruneAt: number | undefined;

  constructor(options: SeriesOptions) {
    this.#store = options.store;
    this.#resources = options.resources;
    this.#blobs = options.blobs;
    this.#config = options.config;
    this.#logger = options.logger;
    this.#events = options.events;
    this.#paths = new SequencePaths({ store: options.store, resources: options.resources, ttlMs: options.config.cacheTtl * 1000 });
    this.#heads = new SequenceHeads({ store: options.store, ttlMs: options.config.cacheTtl * 1000 });
    this.#queue = new IngestQueue({
      capacity: options.config.ingestQueueSize,
      batchSize: options.config.ingestBatchSize,
      flushIntervalMs: options.config.ingestFlushInterval,
      write: (values) => this.#write(values),
    });
    this.#recorder = new StateRecorder({
      store: options.store,
      resources: options.resources,
      ingest: (values) => this.ingest(values),
      match: stateMatcher(stateFields(options.config.stateSequences)),
      logger: options.logger,
    });
  }

  /** Starts recording device state and the retention passes. */
  start(): void {
    this.#stopRecording = this.#events?.onPublished((event) => this.#recorder.handle(event));
    this.#retention = setInterval(() => void this.prune().catch((error: unknown) => this.#logger.warn({ err: error }, 'sequence retention failed')), this.#config.retentionInterval * 1000);
    this.#retention.unref();
  }

  /** Stops taking values and writes everything queued. */
  async close(): Promise<void> {
    clearInterval(this.#retention);
    this.#stopRecording?.();
    await this.#recorder.idle();
    await this.#queue.close();
    await this.#pruning;
  }

  /**
   * Queues values and resolves, one result per value, once they are committed. Waits while the
   * queue is full. A value of an unknown sequence or of the wrong type gets its error alone.
   */
  ingest(values: IngestValue[]): Promise<IngestResult[]> {
    return this.#queue.push(values);
  }

  /** Hears every batch of values this node commits. Returns the unsubscribe. */
  onCommitted(listener: (values: CommittedValue[]) => void): () => void {
    this.#committedListeners.add(listener);
    return () => void this.#committedListeners.delete(listener);
  }

  /** Writes one value (at `t` ms, default now) to the sequence at a full path the actor may write. */
  async record(actor: Actor, path: string, value: number | string | Buffer, t = Date.now()): Promise<{ stored: boolean }> {
    const [sequence] = await this.#paths.resolveMany(actor.principal, [path], 'write');
    if (sequence instanceof FleetError) throw sequence;
    if (sequence?.type !== 'sequence') throw notASequence(path);
    const [result] = await this.ingest([{ sequenceId: sequence.id, t, value }]);
    if (!result || 'error' in result) throw result?.error ?? new FleetError('internal', 'The value got no result');
    return result;
  }

  /**
   * Writes values of many sequences at one time, as rhizo's bulk update: each path gets its own
   * result (a missing sequence or one the actor may not write fails alone).
   */
  async recordMany(actor: Actor, bulk: BulkValues): Promise<Record<string, RecordResult>> {
    const t = await this.#bulkTime(actor.principal, bulk);
    const paths = Object.keys(bulk.values);
    const located = await this.#paths.resolveMany(actor.principal, paths, 'write');
    const results: Record<string, RecordResult> = {};
    const wanted: Array<{ path: string; value: IngestValue }> = [];
    paths.forEach((path, i) => {
      const sequence = located[i]!;
      if (sequence instanceof FleetError) results[path] = { error: sequence };
      else if (sequence.type !== 'sequence') results[path] = { error: notASequence(path) };
      else wanted.push({ path, value: { sequenceId: sequence.id, t, value: bulk.values[path] as IngestValue['value'] } });
    });
    const ingested = await this.ingest(wanted.map((w) => w.value));
    wanted.forEach((w, i) => (results[w.path] = ingested[i]!));
    return results;
  }

  /** Stored values of a sequence the principal may read. */
  async raw(p: Principal | undefined, path: string, query: RawQuery = {}): Promise<SequenceDescription & { values: SeriesValue[] }> {
    const { resource, row } = await this.#sequenceRow(p, path);
    return { ...describe(resource, row), values: await rawValues(this.#store.db, this.#blobs, row.resource_id, query) };
  }

  /** A numeric sequence's values consolidated by its round-robin archives. */
  async consolidated(p: Principal | undefined, path: string, query: ConsolidatedQuery): Promise<SequenceDescription & ConsolidatedSeries> {
    const { resource, row } = await this.#sequenceRow(p, path);
    return { ...describe(resource, row), ...(await consolidatedValues(this.#store.db, row, query)) };
  }

  /** The newest value of a sequence, null before the first. */
  async last(p: Principal | undefined, path: string): Promise<SequenceDescription & { last: SeriesValue | null }> {
    const { resource, row } = await this.#sequenceRow(p, path);
    return { ...describe(resource, row), last: await lastValue(this.#store.db, this.#blobs, row) };
  }

  /** One retention pass (also run every retentionInterval); returns how many values went. */
  async prune(): Promise<number> {
    if (this.#pruning) return 0;
    const startedAt = Date.now();
    const historySince = this.#lastPruneAt === undefined ? undefined : this.#lastPruneAt - historyMarginMs;
    const pass = pruneSequences(this.#store, this.#blobs, { now: startedAt, historySince });
    this.#pruning = pass.finally(() => (this.#pruning = undefined));
    const removed = await pass;
    this.#lastPruneAt = startedAt;
    return removed;
  }

  async #write(values: IngestValue[]): Promise<IngestResult[]> {
    const { results, committed } = await writeBatch({ store: this.#store, blobs: this.#blobs, blobThreshold: this.#config.blobThreshold, heads: this.#heads }, values);
    if (committed.length > 0) {
      for (const listener of this.#committedListeners) {
        try {
          listener(committed);
        } catch (error) {
          this.#logger.error({ err: error }, 'a listener of committed values failed');
        }
      }
    }
    return results;
  }

  async #sequenceRow(p: Principal | undefined, path: string): Promise<{ resource: ResourceInfo; row: Database['sequences'] }> {
    const resource = await this.#resources.resolve(p, path, 'read');
    if (resource.type !== 'sequence') throw notASequence(path);
    const row = await this.#store.db.selectFrom('sequences').selectAll().where('resource_id', '=', resource.id).executeTakeFirst();
    if (!row) throw notFound('Sequence');
    return { resource, row };
  }

  /** The time of a bulk update's values, corrected when it comes from a drifting device clock. */
  async #bulkTime(p: Principal, bulk: BulkValues): Promise<number> {
    const now = Date.now();
    if (bulk.timestamp === undefined) return now;
    if (!Number.isFinite(bulk.timestamp)) throw badRequest('The timestamp is a time in milliseconds since the epoch');
    const timestamp = Math.round(bulk.timestamp);
    if (p.kind !== 'device' || bulk.deviceClock === false || Math.abs(now - timestamp) <= 30_000) return timestamp;
    const folder = await this.#resources.deviceFolder(p.deviceId);
    const attributes = folder.systemAttributes;
    const kept = typeof attributes.timestamp_correction === 'number' ? attributes.timestamp_correction : 0;
    const corrected = correctDeviceTime(timestamp, now, kept);
    if (corrected.correction !== kept) await this.#resources.update(systemActor, folder.path, { systemAttributes: { timestamp_correction: corrected.correction } });
    return corrected.t;
  }
}

function describe(resource: ResourceInfo, row: Database['sequences']): SequenceDescription {
  return { path: resource.path, dataType: row.data_type, units: row.units, decimalPlaces: row.decimal_places };
}

const notASequence = (path: string) => badRequest(`${path} is not a sequence`);
