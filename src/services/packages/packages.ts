import { Transform, type Readable } from 'node:stream';
import type { BlobStore, StoredBlob } from '../../blob/blob-store.ts';
import type { Config } from '../../config/keys.ts';
import { authorize, type Principal } from '../../core/access.ts';
import { badRequest, conflict, FleetError, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { decodeSignature, signatureVerifies } from '../../core/package-signature.ts';
import type { Logger } from '../../log.ts';
import { nowIso, paginate, type Page, type PageRequest } from '../../store/page.ts';
import type { Store } from '../../store/store.ts';
import { actorRef, type Actor } from '../actor.ts';
import { recordAudit } from '../audit.ts';
import type { Organizations } from '../organizations.ts';
import type { PackageLinks } from './download-links.ts';
import { packageBlobKey, toPackage, type Package, type PackageRow } from './package.ts';
import { checkPackageInput, signatureRequired, type PackageInput } from './package-input.ts';
import { usersOfPackage } from './package-usage.ts';
import { SigningKeys, type PackageSigningKey } from './signing-keys.ts';

export interface PackagesOptions {
  store: Store;
  organizations: Organizations;
  blobs: BlobStore;
  config: Pick<Config, 'maxPackageSize' | 'packageLinkTtl' | 'requirePackageSignature'>;
  links: PackageLinks;
  logger: Logger;
}

/** Uploads still 'uploading' after this long were cut off by a crash: the sweep removes them. */
const abandonedUploadAge = 3600 * 1000;

/** A download link: signed by fleetd, or presigned by S3. */
export interface DownloadLink {
  url: string;
  expiresAt: string;
}

/** Links remembered: one per polling device is plenty; past this the memory starts over. */
const maxRecentLinks = 10_000;

/**
 * OTA packages: content in blob storage, streamed in with its SHA-256 and size computed on the way;
 * a row that is 'uploading' until the content is durable, then 'ready' (only ready packages are
 * seen). Also the organization's signing keys, and links devices download with.
 */
export class Packages {
  private readonly store: Store;
  private readonly organizations: Organizations;
  private readonly blobs: BlobStore;
  private readonly config: PackagesOptions['config'];
  private readonly links: PackageLinks;
  private readonly logger: Logger;
  private readonly signingKeys: SigningKeys;
  /**
   * Links handed out, by package, device, expiry and base URL: a device polling for updates asks for
   * the same one again and again (expiry times are rounded up), and a lookup costs less than signing.
   */
  private readonly recentLinks = new Map<string, DownloadLink>();

  constructor(options: PackagesOptions) {
    ({ store: this.store, organizations: this.organizations, blobs: this.blobs, config: this.config, links: this.links, logger: this.logger } = options);
    this.signingKeys = new SigningKeys(options.store, options.organizations);
  }

  /**
   * Stores a package whose content arrives as a stream. The service owns `content`: it is destroyed
   * on any failure, and then neither row nor blob is left. An error of `content` itself (a client
   * gone, a malformed form) is what the returned promise rejects with.
   */
  async upload(actor: Actor, orgIdOrSlug: string, input: PackageInput, content: Readable): Promise<Package> {
    // Watched from the first moment: the content may fail while the checks below wait for the store.
    const watch = new ContentWatch(content);
    let row: PackageRow;
    let signature: Buffer | undefined;
    try {
      const org = await this.organizations.resolve(orgIdOrSlug);
      authorize(actor.principal, 'package.manage', { orgId: org.id });
      const checked = checkPackageInput(input);
      signature = input.signature === undefined ? undefined : decodeSignature(input.signature);
      if (!signature && this.config.requirePackageSignature) throw signatureRequired();
      // Refused before any byte is stored: there is nothing the signature could verify with.
      if (signature && (await this.signingKeys.active(org.id)).length === 0) throw badRequest('signature does not verify: the organization has no active signing key');
      const id = newId('pkg');
      row = {
        id,
        org_id: org.id,
        version: checked.version,
        device_type: checked.deviceType,
        metadata: JSON.stringify(checked.metadata),
        size: 0,
        sha256: '',
        blob_key: packageBlobKey(org.id, id),
        signature: null,
        signing_key_id: null,
        status: 'uploading',
        created_by: actorRef(actor.principal).id,
        created_at: nowIso(),
        ready_at: null,
      };
      // The row comes first, so that a crash during the upload leaves something the sweep finds.
      await this.store.db.insertInto('packages').values(row).execute();
    } catch (error) {
      content.destroy();
      throw error;
    }
    try {
      const stored = await this.storeContent(row.blob_key, content, watch);
      const signingKeyId = signature ? await this.verifySignature(row.org_id, stored.sha256, signature) : null;
      const ready: PackageRow = {
        ...row,
        size: stored.size,
        sha256: stored.sha256,
        signature: signature ? signature.toString('base64') : null,
        signing_key_id: signingKeyId,
        status: 'ready',
        ready_at: nowIso(),
      };
      await this.store.transaction(async (tx) => {
        const { id: _, ...values } = ready;
        const updated = await tx.updateTable('packages').set(values).where('id', '=', row.id).where('status', '=', 'uploading').executeTakeFirst();
        // The sweep of another node took it for abandoned (it ran for over an hour).
        if (updated.numUpdatedRows === 0n) throw new FleetError('conflict', 'The upload took so long that it was taken for abandoned; send it again');
        await recordAudit(tx, actor, {
          orgId: row.org_id,
          action: 'package.upload',
          target: { type: 'package', id: row.id },
          details: { version: row.version, deviceType: row.device_type, size: stored.size, sha256: stored.sha256, signingKeyId },
        });
      });
      return toPackage(ready);
    } catch (error) {
      content.destroy();
      await this.discardUpload(row);
      throw error;
    }
  }

  /** Refuses (404/403) who may not upload to the organization: for routes to answer before reading a body. */
  async authorizeUpload(actor: Actor, orgIdOrSlug: string): Promise<void> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'package.manage', { orgId: org.id });
  }

  async list(principal: Principal, orgIdOrSlug: string, filter: { deviceType?: string; version?: string }, page: PageRequest): Promise<Page<Package>> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(principal, 'package.read', { orgId: org.id });
    let query = this.store.db.selectFrom('packages').selectAll().where('org_id', '=', org.id).where('status', '=', 'ready');
    if (filter.deviceType !== undefined) query = query.where('device_type', '=', filter.deviceType);
    if (filter.version !== undefined) query = query.where('version', '=', filter.version);
    const result = await paginate(query, 'id', page);
    return { items: result.items.map(toPackage), nextCursor: result.nextCursor };
  }

  async get(principal: Principal, orgIdOrSlug: string, packageId: string): Promise<Package> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(principal, 'package.read', { orgId: org.id });
    const found = await this.find(org.id, packageId);
    if (!found) throw notFound('Package');
    return found;
  }

  /**
   * Deletes a package nobody needs any more (409 otherwise, naming who does). The row goes in the
   * transaction, the blob after the commit.
   */
  async delete(actor: Actor, orgIdOrSlug: string, packageId: string): Promise<void> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'package.manage', { orgId: org.id });
    const row = await this.store.transaction(async (tx) => {
      let query = tx.selectFrom('packages').selectAll().where('org_id', '=', org.id).where('id', '=', packageId).where('status', '=', 'ready');
      if (this.store.kind === 'postgres') query = query.forUpdate();
      const found = await query.executeTakeFirst();
      if (!found) throw notFound('Package');
      const users = await usersOfPackage(tx, packageId);
      if (Object.keys(users).length > 0) throw conflict('The package is in use by a group, a deployment or a device update in progress', users);
      await tx.deleteFrom('packages').where('id', '=', packageId).execute();
      await recordAudit(tx, actor, { orgId: org.id, action: 'package.delete', target: { type: 'package', id: packageId }, details: { version: found.version, deviceType: found.device_type, sha256: found.sha256 } });
      return found;
    });
    await this.blobs.delete(row.blob_key).catch((error: unknown) => this.logger.warn({ err: error, key: row.blob_key }, 'the content of a deleted package could not be removed from blob storage'));
  }

  /** Ready packages of a device type, oldest first (no authorization: for the update resolver). */
  async candidates(orgId: string, deviceType: string): Promise<Package[]> {
    const rows = await this.store.db.selectFrom('packages').selectAll().where('org_id', '=', orgId).where('device_type', '=', deviceType).where('status', '=', 'ready').orderBy('id').execute();
    return rows.map(toPackage);
  }

  /** The ready packages of these ids, in the order of `ids`; unknown ones are left out (no authorization). */
  async byIds(orgId: string, ids: readonly string[]): Promise<Package[]> {
    if (ids.length === 0) return [];
    const rows = await this.store.db.selectFrom('packages').selectAll().where('org_id', '=', orgId).where('id', 'in', [...ids]).where('status', '=', 'ready').execute();
    const byId = new Map(rows.map((row) => [row.id, toPackage(row)]));
    return ids.flatMap((id) => byId.get(id) ?? []);
  }

  /** A ready package of the organization (no authorization). */
  async find(orgId: string, packageId: string): Promise<Package | undefined> {
    const row = await this.store.db.selectFrom('packages').selectAll().where('org_id', '=', orgId).where('id', '=', packageId).where('status', '=', 'ready').executeTakeFirst();
    return row && toPackage(row);
  }

  /**
   * A link that downloads the package without credentials until it expires: presigned by the blob
   * store when it serves downloads itself (S3), else fleetd's own signed link under `baseUrl`.
   */
  async downloadLink(pkg: Package, baseUrl: string, options: { deviceId?: string; ttlSeconds?: number } = {}): Promise<DownloadLink> {
    const ttlSeconds = options.ttlSeconds ?? this.config.packageLinkTtl;
    const now = Math.floor(Date.now() / 1000);
    if (this.blobs.presignedGetUrl) return { url: await this.blobs.presignedGetUrl(packageBlobKey(pkg.orgId, pkg.id), ttlSeconds), expiresAt: new Date((now + ttlSeconds) * 1000).toISOString() };
    // Rounded up to an eighth of the lifetime, so that a device polling often gets the same link (signed once) for a while.
    const step = Math.max(1, Math.floor(ttlSeconds / 8));
    const expiresAt = Math.ceil((now + ttlSeconds) / step) * step;
    const key = `${pkg.id}\0${options.deviceId ?? ''}\0${expiresAt}\0${baseUrl}`;
    let link = this.recentLinks.get(key);
    if (link === undefined) {
      const token = this.links.sign({ packageId: pkg.id, orgId: pkg.orgId, deviceId: options.deviceId, expiresAt });
      link = { url: `${baseUrl}/api/packages/download/${token}`, expiresAt: new Date(expiresAt * 1000).toISOString() };
      if (this.recentLinks.size >= maxRecentLinks) this.recentLinks.clear();
      this.recentLinks.set(key, link);
    }
    return link;
  }

  /** The package a signed link grants; 404 when the link is invalid or expired, or the package gone. */
  async byLink(token: string): Promise<Package> {
    const grant = this.links.verify(token);
    const found = await this.find(grant.orgId, grant.packageId);
    if (!found) throw new FleetError('not_found', 'This download link is not valid, or has expired');
    return found;
  }

  /** The package's content, or the inclusive byte range of it, as a stream. */
  async open(pkg: Package, range?: { start: number; end?: number }): Promise<Readable> {
    const opened = await this.blobs.getStream(packageBlobKey(pkg.orgId, pkg.id), range);
    // A ready row whose blob is gone is damage to report, not a missing package to hide.
    if (!opened) throw new FleetError('internal', `The content of package ${pkg.id} is missing from blob storage`);
    return opened.stream;
  }

  listSigningKeys(principal: Principal, orgIdOrSlug: string, page: PageRequest): Promise<Page<PackageSigningKey>> {
    return this.signingKeys.list(principal, orgIdOrSlug, page);
  }

  addSigningKey(actor: Actor, orgIdOrSlug: string, input: { name: string; publicKey: string }): Promise<PackageSigningKey> {
    return this.signingKeys.add(actor, orgIdOrSlug, input);
  }

  revokeSigningKey(actor: Actor, orgIdOrSlug: string, keyId: string): Promise<void> {
    return this.signingKeys.revoke(actor, orgIdOrSlug, keyId);
  }

  /**
   * Removes uploads a crash cut off: rows still 'uploading' after an hour, blob first, so that a
   * crash in between leaves the row for the next sweep. Safe when every node runs it at once.
   */
  async sweepAbandonedUploads(now = Date.now()): Promise<number> {
    const rows = await this.store.db
      .selectFrom('packages')
      .selectAll()
      .where('status', '=', 'uploading')
      .where('created_at', '<', nowIso(now - abandonedUploadAge))
      .execute();
    for (const row of rows) await this.discardUpload(row);
    if (rows.length > 0) this.logger.info({ count: rows.length }, 'removed abandoned package uploads');
    return rows.length;
  }

  /**
   * Streams the content to blob storage, refusing (413) past maxPackageSize. The content is piped
   * (not pipelined) so that a failure of the store does not pass for a failure of the content;
   * what the content itself did wrong wins over the store's own report of it.
   */
  private async storeContent(key: string, content: Readable, watch: ContentWatch): Promise<StoredBlob> {
    const max = this.config.maxPackageSize;
    let tooLarge: FleetError | undefined;
    let size = 0;
    const limited = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        if (size <= max) return done(null, chunk);
        tooLarge = new FleetError('payload_too_large', `A package may have at most ${max} bytes`);
        content.destroy();
        done(tooLarge);
      },
    });
    // The store may start reading only after awaiting its own set-up: an error destroying `limited`
    // before then must not go uncaught. The store still sees it when it reads; this reports it.
    limited.on('error', () => {});
    watch.onFailure((failure) => limited.destroy(failure));
    content.pipe(limited);
    try {
      return await this.blobs.putStream(key, limited);
    } catch (error) {
      throw tooLarge ?? watch.failure ?? error;
    }
  }

  /** The key that verifies the signature of the digest, among the organization's active keys; 400 when none does. */
  private async verifySignature(orgId: string, sha256: string, signature: Buffer): Promise<string> {
    const keys = await this.signingKeys.active(orgId);
    const match = keys.find((candidate) => signatureVerifies(candidate.key, sha256, signature));
    if (!match) throw badRequest('signature does not verify with any active signing key of the organization');
    return match.id;
  }

  /** Removes what an upload left: the blob, then the row (only while it is still an upload). */
  private async discardUpload(row: Pick<PackageRow, 'id' | 'blob_key'>): Promise<void> {
    try {
      await this.blobs.delete(row.blob_key);
      await this.store.db.deleteFrom('packages').where('id', '=', row.id).where('status', '=', 'uploading').execute();
    } catch (error) {
      // The sweep gets another chance at the row (and so the blob) after an hour.
      this.logger.warn({ err: error, packageId: row.id }, 'could not remove what a failed package upload left');
    }
  }
}

/**
 * How a content stream failed, if it did: its error, or its end before all of it came (a client
 * gone). Listening from the start also keeps an early error from going uncaught.
 */
class ContentWatch {
  failure?: FleetError;
  #listener?: (failure: FleetError) => void;

  constructor(content: Readable) {
    content.on('error', (error) => this.#fail(error instanceof FleetError ? error : interrupted(error)));
    content.on('close', () => {
      if (!content.readableEnded) this.#fail(interrupted());
    });
  }

  /** Calls `listener` on failure, at once when the content failed already. */
  onFailure(listener: (failure: FleetError) => void): void {
    this.#listener = listener;
    if (this.failure) listener(this.failure);
  }

  #fail(failure: FleetError): void {
    if (this.failure) return;
    this.failure = failure;
    this.#listener?.(failure);
  }
}

const interrupted = (cause?: unknown) => new FleetError('bad_request', 'The upload ended before its content was complete', { cause });
