import { Readable } from 'node:stream';
import type { BlobStore, StoredBlob } from '../../blob/blob-store.ts';
import type { Config } from '../../config/keys.ts';
import { authorize, type Principal } from '../../core/access.ts';
import { conflict, FleetError, forbidden, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { Logger } from '../../log.ts';
import { nowIso } from '../../store/page.ts';
import type { Database } from '../../store/schema.ts';
import type { Store } from '../../store/store.ts';
import { actorRef, type Actor } from '../actor.ts';
import { recordAudit } from '../audit.ts';
import type { Organizations } from '../organizations.ts';
import type { PullGrant, PullLinks } from './pull-links.ts';
import { requireCapability, requireOnline, targetDevice, type DeviceRef } from './target-device.ts';

/** Longest pause between two sweeps for pulls whose device never uploaded. */
const maxSweepIntervalMs = 30_000;

/** A file asked of a device, and where its copy is once the device sent it. */
export interface FilePull {
  id: string;
  deviceId: string;
  /** The path on the device, as the operator gave it. */
  path: string;
  status: PullRow['status'];
  size: number | null;
  /** Hex SHA-256 of the bytes received. */
  sha256: string | null;
  error: string | null;
  requestedBy: { type: string; id: string };
  createdAt: string;
  finishedAt: string | null;
}

type PullRow = Database['file_pulls'];

/** A finished pull's file: its size and digest, and its bytes from `range.start` to `range.end` (inclusive) when given. */
export interface PulledFile {
  pull: FilePull;
  size: number;
  sha256: string;
  open(range?: { start: number; end: number }): Promise<Readable>;
}

const toPull = (row: PullRow): FilePull => ({
  id: row.id,
  deviceId: row.device_id,
  path: row.path,
  status: row.status,
  size: row.size,
  sha256: row.sha256,
  error: row.error,
  requestedBy: { type: row.requested_by_type, id: row.requested_by_id },
  createdAt: row.created_at,
  finishedAt: row.finished_at,
});

const pullBlobKey = (orgId: string, pullId: string) => `pulls/${orgId}/${pullId}`;

/** Where part `n` (from 1) of a pull uploaded in parts waits until the device says the upload is complete. */
export const pullPartKey = (orgId: string, pullId: string, n: number): string => `pulls-parts/${orgId}/${pullId}/${n}`;

const tooLarge = (max: number) => new FleetError('payload_too_large', `The file is larger than ${max} bytes (maxFilePullSize)`);

/**
 * Passes `content` on, failing with `tooLargeError` once more than `max` bytes went through: the
 * blob write then stops and leaves nothing. `content` itself is left as it is, not destroyed: an
 * HTTP route then reads and drops the rest of the request (http/discard-rest.ts), so that the
 * client still gets its answer.
 */
function capped(content: Readable, max: number, tooLargeError: () => FleetError): Readable {
  return Readable.from(
    (async function* () {
      let received = 0;
      for await (const chunk of content.iterator({ destroyOnReturn: false })) {
        received += (chunk as Buffer).length;
        if (received > max) throw tooLargeError();
        yield chunk as Buffer;
      }
    })(),
  );
}

/** Why an upload failed, for the pull's record: a refusal of the content says what it refused. */
function uploadFailure(error: unknown): string {
  if (error instanceof FleetError && error.code === 'payload_too_large') return 'the file is too large';
  if (error instanceof FleetError && error.code === 'bad_request') return error.message;
  return 'the upload broke off';
}

/**
 * Files pulled from devices into blob storage. An admin asks (the device must offer `filesystem` and
 * be connected); the device is told by its adapter and uploads the bytes once with its own
 * credential, streamed to storage with a size cap and a SHA-256, or says why it cannot.
 */
export class FilePulls {
  readonly #store: Store;
  readonly #organizations: Organizations;
  readonly #blobs: BlobStore;
  readonly #config: Config;
  readonly #links: PullLinks;
  readonly #logger: Logger;
  #sweeper: NodeJS.Timeout | undefined;
  #sweeping: Promise<unknown> = Promise.resolve();

  constructor(options: { store: Store; organizations: Organizations; blobs: BlobStore; config: Config; links: PullLinks; logger: Logger }) {
    this.#store = options.store;
    this.#organizations = options.organizations;
    this.#blobs = options.blobs;
    this.#config = options.config;
    this.#links = options.links;
    this.#logger = options.logger;
  }

  /** Sweeps pulls whose device never started its upload, on every node (each sweep is one conditional update). */
  start(): void {
    const intervalMs = Math.min(this.#config.filePullTimeout * 1000, maxSweepIntervalMs) / 2;
    this.#sweeper = setInterval(() => {
      this.#sweeping = this.sweepTimeouts().catch((error: unknown) => this.#logger.warn({ err: error }, 'file pull timeout sweep failed'));
    }, intervalMs);
    this.#sweeper.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await this.#sweeping;
  }

  /**
   * Fails the pulls still pending filePullTimeout after they were requested, removing the parts their
   * device uploaded; returns how many. Each is failed by one conditional update, so of several nodes
   * sweeping at once only one ends it and removes its parts.
   */
  async sweepTimeouts(now = Date.now()): Promise<number> {
    const timeout = this.#config.filePullTimeout;
    const expired = await this.#store.db
      .selectFrom('file_pulls')
      .select(['id', 'org_id', 'parts'])
      .where('status', '=', 'pending')
      .where('created_at', '<', nowIso(now - timeout * 1000))
      .execute();
    let failed = 0;
    for (const pull of expired) {
      if (!(await this.#finishFailed(pull.id, ['pending'], `the device sent no file within ${timeout} s`, now))) continue;
      failed++;
      if (pull.parts !== null) await this.removeParts(pull.org_id, pull.id, pull.parts).catch((error: unknown) => this.#logger.warn({ err: error, pullId: pull.id }, 'could not remove the parts of a timed out file pull'));
    }
    return failed;
  }

  /** Records the request (pending); the caller then tells the device, and calls `fail` if it cannot. */
  async request(actor: Actor, orgIdOrSlug: string, deviceId: string, path: string): Promise<FilePull> {
    const device = await targetDevice(this.#store.db, this.#organizations, actor.principal, orgIdOrSlug, deviceId, 'device.files');
    requireCapability(device, 'filesystem');
    requireOnline(device);
    const who = actorRef(actor.principal);
    const row: PullRow = {
      id: newId('pull'),
      org_id: device.orgId,
      device_id: device.id,
      path,
      status: 'pending',
      blob_key: null,
      size: null,
      sha256: null,
      error: null,
      requested_by_type: who.type,
      requested_by_id: who.id,
      created_at: nowIso(),
      finished_at: null,
      parts: null,
    };
    await this.#store.transaction(async (tx) => {
      await tx.insertInto('file_pulls').values(row).execute();
      await recordAudit(tx, actor, { orgId: device.orgId, action: 'device.file_pull', target: { type: 'device', id: device.id }, details: { pullId: row.id, path } });
    });
    return toPull(row);
  }

  async get(principal: Principal, orgIdOrSlug: string, pullId: string): Promise<FilePull> {
    return toPull(await this.#readable(principal, orgIdOrSlug, pullId));
  }

  /** The pulled file, to be read whole or in part; only a finished pull has one (409). */
  async download(principal: Principal, orgIdOrSlug: string, pullId: string): Promise<PulledFile> {
    return this.#pulledFile(await this.#readable(principal, orgIdOrSlug, pullId));
  }

  /** A token that downloads the finished pull's file without credentials for packageLinkTtl (`byLink`), for clients that cannot send any. */
  async downloadToken(principal: Principal, orgIdOrSlug: string, pullId: string): Promise<string> {
    const row = await this.#readable(principal, orgIdOrSlug, pullId);
    if (row.status !== 'done') throw conflict(`The pull is ${row.status}: there is no file yet`, { status: row.status });
    return this.#links.sign({ pullId: row.id, orgId: row.org_id, expiresAt: Math.floor(Date.now() / 1000) + this.#config.packageLinkTtl });
  }

  /** The file a download token names; 404 for a token that is not valid (or a part's). */
  async byLink(token: string): Promise<PulledFile> {
    const grant = this.#links.verify(token);
    const row = grant.part === undefined ? await this.#store.db.selectFrom('file_pulls').selectAll().where('org_id', '=', grant.orgId).where('id', '=', grant.pullId).executeTakeFirst() : undefined;
    if (!row) throw notFound('File pull');
    return this.#pulledFile(row);
  }

  /**
   * Tokens that let whoever holds them upload parts 1 to `parts` of the device's pending pull, each
   * at most `partSize` bytes, until filePullTimeout from now: for devices that upload in parts to
   * URLs they are given (RDFM), whose requests carry no credential.
   */
  async partTokens(device: DeviceRef, pullId: string, parts: number, partSize: number): Promise<{ pull: FilePull; tokens: string[] }> {
    const row = await this.#ofDevice(device, pullId);
    if (row.status !== 'pending') throw conflict(`The pull is ${row.status}: it takes no upload`);
    await this.#store.db.updateTable('file_pulls').set({ parts }).where('id', '=', row.id).execute();
    const expiresAt = Math.floor(Date.now() / 1000) + this.#config.filePullTimeout;
    const tokens = Array.from({ length: parts }, (_, i) => this.#links.sign({ pullId: row.id, orgId: row.org_id, part: { number: i + 1, partSize }, expiresAt }));
    return { pull: toPull(row), tokens };
  }

  /** What a part token grants, while its pull still waits for the upload; 404 for an invalid token, 409 once the pull is not pending. */
  async partGrant(token: string): Promise<Required<PullGrant>> {
    const grant = this.#links.verify(token);
    const { part } = grant;
    if (part === undefined) throw notFound('File pull part');
    const row = await this.#store.db.selectFrom('file_pulls').select('status').where('org_id', '=', grant.orgId).where('id', '=', grant.pullId).executeTakeFirst();
    if (!row) throw notFound('File pull');
    if (row.status !== 'pending') throw conflict(`The pull is ${row.status}: it takes no upload`);
    return { ...grant, part };
  }

  /**
   * Stores a part its grant allows, streamed, at most the grant's part size (413 above it, with the
   * part as it was before). A part sent again replaces the one before. A part that finishes after
   * its pull ended (timed out while it streamed) is removed again and refused (409): the sweep that
   * ended the pull removed the parts stored before it, and this one came too late for it.
   */
  async storePart(grant: Required<PullGrant>, content: Readable): Promise<StoredBlob> {
    const { partSize } = grant.part;
    const partTooLarge = () => new FleetError('payload_too_large', `A part is at most ${partSize} bytes`);
    const key = pullPartKey(grant.orgId, grant.pullId, grant.part.number);
    const stored = await this.#blobs.putStream(key, capped(content, partSize, partTooLarge));
    const pull = await this.#store.db.selectFrom('file_pulls').select('status').where('id', '=', grant.pullId).executeTakeFirst();
    if (pull?.status !== 'pending') {
      await this.#blobs.delete(key);
      throw conflict(`The pull is ${pull?.status ?? 'gone'}: it takes no upload`);
    }
    return stored;
  }

  #pulledFile(row: PullRow): PulledFile {
    const key = row.blob_key;
    if (row.status !== 'done' || key === null) throw conflict(`The pull is ${row.status}: there is no file yet`, { status: row.status });
    return {
      pull: toPull(row),
      size: row.size!,
      sha256: row.sha256!,
      open: async (range) => {
        const content = await this.#blobs.getStream(key, range);
        // A finished pull whose file is gone is damage to report, not a missing pull to hide.
        if (!content) throw new FleetError('internal', `The file of pull ${row.id} is missing from blob storage`);
        return content.stream;
      },
    };
  }

  /**
   * The device's upload: taken once, streamed to blob storage. `declaredSize` (Content-Length) above
   * maxFilePullSize is refused before anything is read. Any failure (too large, the device breaking
   * off) ends the pull failed with nothing stored.
   */
  async receive(device: DeviceRef, pullId: string, content: Readable, declaredSize?: number): Promise<FilePull> {
    const row = await this.#ofDevice(device, pullId);
    const max = this.#config.maxFilePullSize;
    if (declaredSize !== undefined && declaredSize > max) {
      await this.#finishFailed(row.id, ['pending'], 'the file is too large');
      throw tooLarge(max);
    }
    const taken = await this.#store.db.updateTable('file_pulls').set({ status: 'uploading' }).where('id', '=', row.id).where('status', '=', 'pending').executeTakeFirst();
    if (taken.numUpdatedRows === 0n) throw conflict(`The pull is ${(await this.#ofDevice(device, pullId)).status}: it takes no upload`);
    const key = pullBlobKey(row.org_id, row.id);
    try {
      const stored = await this.#blobs.putStream(key, capped(content, max, () => tooLarge(max)));
      const done: Partial<PullRow> = { status: 'done', blob_key: key, size: stored.size, sha256: stored.sha256, finished_at: nowIso() };
      await this.#store.db.updateTable('file_pulls').set(done).where('id', '=', row.id).execute();
      return toPull({ ...row, ...done });
    } catch (error) {
      await this.#blobs.delete(key).catch(() => {});
      await this.#finishFailed(row.id, ['uploading'], uploadFailure(error));
      throw error;
    }
  }

  /** The device cannot send the file (no such file, not readable...): the pull ends failed with its reason. */
  async reportFailure(device: DeviceRef, pullId: string, error: string): Promise<FilePull> {
    const row = await this.#ofDevice(device, pullId);
    if (!(await this.#finishFailed(row.id, ['pending'], error))) throw conflict(`The pull is ${row.status}: it is not waiting for the device`);
    return toPull(await this.#ofDevice(device, pullId));
  }

  /** The device could not be told of the pull. */
  async fail(pullId: string, error: string): Promise<void> {
    await this.#finishFailed(pullId, ['pending'], error);
  }

  /** Removes a pull's parts: 1 to `count`, and any stored past them. */
  async removeParts(orgId: string, pullId: string, count: number): Promise<void> {
    for (let n = 1; n <= count || (await this.#blobs.stat(pullPartKey(orgId, pullId, n))) !== undefined; n++) await this.#blobs.delete(pullPartKey(orgId, pullId, n));
  }

  async #finishFailed(pullId: string, from: Array<PullRow['status']>, error: string, now = Date.now()): Promise<boolean> {
    const updated = await this.#store.db.updateTable('file_pulls').set({ status: 'failed', error, finished_at: nowIso(now) }).where('id', '=', pullId).where('status', 'in', from).executeTakeFirst();
    return updated.numUpdatedRows > 0n;
  }

  async #readable(principal: Principal, orgIdOrSlug: string, pullId: string): Promise<PullRow> {
    const org = await this.#organizations.resolve(orgIdOrSlug);
    authorize(principal, 'device.files', { orgId: org.id });
    const row = await this.#store.db.selectFrom('file_pulls').selectAll().where('org_id', '=', org.id).where('id', '=', pullId).executeTakeFirst();
    if (!row) throw notFound('File pull');
    return row;
  }

  /** A pull of the device's organization; another device's is forbidden to it. */
  async #ofDevice(device: DeviceRef, pullId: string): Promise<PullRow> {
    const row = await this.#store.db.selectFrom('file_pulls').selectAll().where('org_id', '=', device.orgId).where('id', '=', pullId).executeTakeFirst();
    if (!row) throw notFound('File pull');
    if (row.device_id !== device.id) throw forbidden('A device sends only the files pulled from it');
    return row;
  }
}
