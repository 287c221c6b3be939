import type { AdmissionEndpoint, AdmissionPolicy, Config } from '../config/keys.ts';
import { authorize, isSystemAdmin, type Principal } from '../core/access.ts';
import type { StateDocument } from '../core/device-state.ts';
import { badRequest, conflict, FleetError, forbidden, notFound, unauthenticated } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Bus, BusMessage, JsonValue } from '../hub/bus.ts';
import type { EventStream, NewHubEvent } from '../hub/events.ts';
import type { Logger } from '../log.ts';
import { nowIso, paginate, type Page, type PageRequest } from '../store/page.ts';
import { isUniqueViolation, type Db, type Store } from '../store/store.ts';
import { actorRef, type Actor } from './actor.ts';
import { checkCheckinClock, parseCheckinKey, verifyCheckinSignature, type CheckinBody } from './admission/checkin.ts';
import { findEnrollmentToken, newEnrollmentToken, takeTokenUse, toEnrollmentToken, tokenRefusal, type EnrollmentToken } from './admission/enrollment-tokens.ts';
import { enterWaitingRoom, toPendingDevice, waitingKeys, type AdmissionInfo, type PendingDevice, type PendingRow } from './admission/waiting-room.ts';
import { recordAudit } from './audit.ts';
import { findDevice, insertDevice, type Device, type Devices } from './devices.ts';
import type { Organization, Organizations } from './organizations.ts';

export type { AdmissionInfo, CheckinBody, EnrollmentToken, PendingDevice };

export interface AdmissionRequest {
  endpoint: AdmissionEndpoint;
  /** Shelly src, relay channel, check-in device id: 1 to 128 of A-Z a-z 0-9 . _ : @ -. May be empty with a device key. */
  externalId: string;
  /** A device API key already authenticated: admitted as that device. */
  principal?: Principal;
  /** `fe_...` token text. */
  enrollmentToken?: string;
  /** `?org=<slug>` on the device's URL: where its pending entry shows, or where open admission puts it. */
  orgHint?: string;
  info: AdmissionInfo;
  /** The key a checking-in device signs with (canonical PEM, see checkin()). */
  publicKey?: string;
  remoteAddress?: string;
}

/** A device that proved itself with its key pair (Admission.admitSigned). */
export interface SignedAdmission {
  endpoint: Extract<AdmissionEndpoint, 'checkin' | 'rdfm'>;
  externalId: string;
  /** Canonical PEM (parseCheckinKey). */
  publicKey: string;
  /** When the device signed, in milliseconds since the epoch. */
  timestamp: number;
  info: AdmissionInfo;
  replaceInfo?: boolean;
  orgHint?: string;
  remoteAddress?: string;
}

export type AdmissionDecision =
  | { status: 'accepted'; device: Device; via: 'key' | 'token' | 'known' | 'open' | 'manual' }
  | { status: 'pending'; pendingId: string }
  | { status: 'denied'; reason: string };

export type FinalDecision = Exclude<AdmissionDecision, { status: 'pending' }>;

export interface AdmissionOptions {
  store: Store;
  organizations: Organizations;
  devices: Devices;
  events: Pick<EventStream, 'publish'>;
  bus: Bus;
  config: Config;
  logger: Logger;
}

/** What every node hears when a waiting device is accepted or denied. */
interface Decided {
  pendingId: string;
  status: 'accepted' | 'denied';
  deviceId: string | null;
  orgId: string | null;
}

const decidedSubject = 'fleetd.admission.decided';
const externalIdPattern = /^[A-Za-z0-9._:@-]{1,128}$/;
/** What a device says of itself is kept while it waits and shown to admins: enough for any hello. */
const maxInfoBytes = 16 * 1024;
const maxTextLength = 200;

const denied = (reason: string): AdmissionDecision => ({ status: 'denied', reason });

function checkExternalId(externalId: string): void {
  if (typeof externalId !== 'string' || !externalIdPattern.test(externalId)) {
    throw badRequest('A device id must be 1 to 128 letters, digits or . _ : @ -', { externalId: String(externalId).slice(0, 140) });
  }
}

const shortText = (value: unknown) => (typeof value === 'string' && value.trim() !== '' ? value.trim().slice(0, maxTextLength) : undefined);
const isDocument = (value: unknown): value is StateDocument => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The device's own words, bounded: they come from devices nobody trusts yet. */
function cleanInfo(info: AdmissionInfo): { info: AdmissionInfo; json: string } {
  const clean = {
    name: shortText(info.name),
    model: shortText(info.model),
    firmware: shortText(info.firmware),
    metadata: isDocument(info.metadata) ? info.metadata : undefined,
    hello: info.hello,
  };
  let json = JSON.stringify(clean);
  // A greeting may carry the device's whole status: admins can do without it, not without the rest.
  if (Buffer.byteLength(json) > maxInfoBytes) json = JSON.stringify({ ...clean, hello: undefined });
  if (Buffer.byteLength(json) > maxInfoBytes) throw new FleetError('payload_too_large', `What the device says of itself exceeds ${maxInfoBytes} bytes`);
  return { info: JSON.parse(json) as AdmissionInfo, json };
}

/**
 * How a device becomes trusted: by its own API key, an enrollment token, being known already, or the
 * policy of the endpoint it connects to (open, token only, or the waiting room where admins accept or
 * deny it). Also the signed check-in of devices that prove themselves with a key pair.
 */
export class Admission {
  readonly #options: AdmissionOptions;
  readonly #waiters = new Map<string, Set<(decision: FinalDecision) => void>>();

  constructor(options: AdmissionOptions) {
    this.#options = options;
  }

  /** Hears decisions made on any node: what waitForDecision relies on. */
  async start(): Promise<void> {
    await this.#options.bus.subscribe(decidedSubject, (message) => this.#decided(message));
  }

  policyFor(endpoint: AdmissionEndpoint): AdmissionPolicy {
    return this.#options.config.admissionEndpoints[endpoint] ?? this.#options.config.admission;
  }

  async admit(request: AdmissionRequest): Promise<AdmissionDecision> {
    if (request.principal) return this.#admitKeyHolder(request.principal, request);
    checkExternalId(request.externalId);
    const db = this.#options.store.db;
    const known = await db.selectFrom('devices').select(['id', 'org_id', 'public_key']).where('external_id', '=', request.externalId).executeTakeFirst();
    if (known) {
      // The trade-off of the Shelly way: an unchanged device names itself by an id that is no secret
      // (printed on it, sent in every frame), so whoever knows the id may connect as the device.
      // A device that checks in with a key pair is held to its key instead.
      if (known.public_key !== (request.publicKey ?? null)) {
        return denied(known.public_key === null ? `Device ${request.externalId} is registered without a check-in key` : `Device ${request.externalId} must prove itself with its own check-in key`);
      }
      return { status: 'accepted', device: await this.#device(known.id, known.org_id), via: 'known' };
    }
    const { info, json } = cleanInfo(request.info);
    // An admin handed this token out: it outweighs a denial remembered from before.
    if (request.enrollmentToken !== undefined) return this.#admitWithToken(request, info);
    const remembered = await db.selectFrom('pending_devices').select('state').where('external_id', '=', request.externalId).executeTakeFirst();
    if (remembered?.state === 'denied') return denied('The device was denied admission');
    switch (this.policyFor(request.endpoint)) {
      case 'open': {
        const org = request.orgHint === undefined ? undefined : await this.#organizationNamed(request.orgHint);
        if (!org) return denied('Open admission needs the organization the device joins: add ?org=<organization> to its URL');
        return { status: 'accepted', device: (await this.#register(org.id, request, info, 'admission.open'))!, via: 'open' };
      }
      case 'token':
        return denied('An enrollment token or device key is required');
      case 'manual':
        return this.#wait(request, json);
    }
  }

  /** A device API key: admitted as its device, which it may name only by that device's id. */
  async #admitKeyHolder(principal: Principal, request: AdmissionRequest): Promise<AdmissionDecision> {
    if (principal.kind !== 'device') return denied('Only a device key admits a device');
    const row = await findDevice(this.#options.store.db, principal.orgId, principal.deviceId);
    if (!row) return denied('The device of this key no longer exists');
    if (request.externalId !== '') {
      checkExternalId(request.externalId);
      if (row.external_id !== null && row.external_id !== request.externalId) return denied(`This key belongs to device ${row.external_id}, not ${request.externalId}`);
      if (row.external_id === null && !(await this.#bind(principal, row.id, request))) return denied(`Another device is registered as ${request.externalId}`);
    }
    return { status: 'accepted', device: await this.#device(row.id, row.org_id), via: 'key' };
  }

  /** Records the id a keyed device calls itself by, the first time it names one. */
  async #bind(principal: Extract<Principal, { kind: 'device' }>, deviceId: string, request: AdmissionRequest): Promise<boolean> {
    try {
      return await this.#options.store.transaction(async (tx) => {
        const bound = await tx.updateTable('devices').set({ external_id: request.externalId, updated_at: nowIso() }).where('id', '=', deviceId).where('external_id', 'is', null).executeTakeFirst();
        if (bound.numUpdatedRows !== 1n) return false;
        await tx.deleteFrom('pending_devices').where('external_id', '=', request.externalId).execute();
        await recordAudit(tx, { principal, ip: request.remoteAddress }, { orgId: principal.orgId, action: 'device.bind', target: { type: 'device', id: deviceId }, details: { externalId: request.externalId, endpoint: request.endpoint } });
        return true;
      });
    } catch (error) {
      // Another device has the id already: that is the refusal.
      if (isUniqueViolation(error)) return false;
      throw error;
    }
  }

  async #admitWithToken(request: AdmissionRequest, info: AdmissionInfo): Promise<AdmissionDecision> {
    const token = await findEnrollmentToken(this.#options.store.db, request.enrollmentToken!);
    if (!token) return denied('The enrollment token is not valid');
    const refusal = tokenRefusal(token);
    if (refusal) return denied(refusal);
    const device = await this.#register(token.orgId, request, info, 'admission.enroll', { tags: token.tags, tokenId: token.id, take: (tx) => takeTokenUse(tx, token.id) });
    return device ? { status: 'accepted', device, via: 'token' } : denied('The enrollment token is used up, expired or revoked');
  }

  /**
   * Registers a device admitted without anyone deciding (token, open policy), audited as the device
   * itself. `take` runs first in the same transaction; when it returns false nothing is registered.
   */
  async #register(
    orgId: string,
    request: AdmissionRequest,
    info: AdmissionInfo,
    action: string,
    options: { tags?: string[]; tokenId?: string; take?: (tx: Db) => Promise<boolean> } = {},
  ): Promise<Device | undefined> {
    return this.#options.store.transaction(async (tx) => {
      if (options.take && !(await options.take(tx))) return undefined;
      const device = await insertDevice(tx, orgId, {
        name: info.name ?? request.externalId,
        model: info.model ?? null,
        firmware: info.firmware ?? null,
        metadata: info.metadata,
        tags: options.tags,
        externalId: request.externalId,
        publicKey: request.publicKey ?? null,
      });
      await tx.deleteFrom('pending_devices').where('external_id', '=', request.externalId).execute();
      const actor = { principal: this.#options.devices.principalFor(device), ip: request.remoteAddress };
      const details = { externalId: request.externalId, endpoint: request.endpoint, ...(options.tokenId && { tokenId: options.tokenId }) };
      await recordAudit(tx, actor, { orgId, action, target: { type: 'device', id: device.id }, details });
      return device;
    });
  }

  async #wait(request: AdmissionRequest, json: string): Promise<AdmissionDecision> {
    // An unknown organization is not told apart from none: the device waits for the system admins.
    const org = request.orgHint === undefined ? undefined : await this.#organizationNamed(request.orgHint);
    const arrival = {
      endpoint: request.endpoint,
      externalId: request.externalId,
      orgId: org?.id ?? null,
      info: json,
      publicKey: request.publicKey ?? null,
      remoteAddress: request.remoteAddress ?? null,
    };
    const outcome = await enterWaitingRoom(this.#options.store.db, arrival, this.#options.config.waitingRoomSize);
    if ('refused' in outcome) return denied(outcome.refused);
    const { row } = outcome;
    if (outcome.created) {
      await this.#publish({ name: 'admission.pending', orgId: row.org_id, deviceId: null, data: { pendingId: row.id, externalId: row.external_id, endpoint: row.endpoint, info: JSON.parse(json) as JsonValue } });
    }
    return { status: 'pending', pendingId: row.id };
  }

  /**
   * Calls back once when `pendingId` is accepted or denied on any node. Returns the cancel function.
   * Call it as soon as admit() answers pending: a decision announced before is not told again (the
   * device then finds itself known, or denied, when it reconnects).
   */
  waitForDecision(pendingId: string, onDecision: (decision: FinalDecision) => void): () => void {
    const waiters = this.#waiters.get(pendingId) ?? new Set();
    this.#waiters.set(pendingId, waiters);
    const cancel = () => {
      waiters.delete(once);
      if (waiters.size === 0 && this.#waiters.get(pendingId) === waiters) this.#waiters.delete(pendingId);
    };
    const once = (decision: FinalDecision) => {
      cancel();
      onDecision(decision);
    };
    waiters.add(once);
    return cancel;
  }

  #decided(message: BusMessage): undefined {
    const decided = message.payload as Partial<Decided> | null;
    const pendingId = decided?.pendingId;
    if (typeof pendingId !== 'string' || !this.#waiters.has(pendingId)) return undefined;
    this.#outcome(decided as Decided).then(
      (decision) => {
        for (const waiter of [...(this.#waiters.get(pendingId) ?? [])]) waiter(decision);
      },
      (error: unknown) => this.#options.logger.error({ err: error, pendingId }, 'could not tell a waiting device its admission decision'),
    );
    return undefined;
  }

  async #outcome(decided: Decided): Promise<FinalDecision> {
    if (decided.status !== 'accepted' || decided.deviceId === null || decided.orgId === null) return { status: 'denied', reason: 'An administrator denied the device admission' };
    try {
      return { status: 'accepted', device: await this.#device(decided.deviceId, decided.orgId), via: 'manual' };
    } catch (error) {
      if (error instanceof FleetError && error.code === 'not_found') return { status: 'denied', reason: 'The device was removed right after it was accepted' };
      throw error;
    }
  }

  /** Devices waiting in an organization (its admins), or without one (system admins only). */
  async listPending(principal: Principal, orgIdOrSlug: string | undefined, filter: { state?: 'pending' | 'denied' }, page: PageRequest): Promise<Page<PendingDevice>> {
    let query = this.#options.store.db.selectFrom('pending_devices').selectAll();
    if (orgIdOrSlug === undefined) {
      if (!isSystemAdmin(principal)) throw forbidden('Only system admins see devices waiting without an organization');
      query = query.where('org_id', 'is', null);
    } else {
      const org = await this.#options.organizations.resolve(orgIdOrSlug);
      authorize(principal, 'device.manage', { orgId: org.id });
      query = query.where('org_id', '=', org.id);
    }
    if (filter.state) query = query.where('state', '=', filter.state);
    const result = await paginate(query, 'id', page);
    return { items: result.items.map(toPendingDevice), nextCursor: result.nextCursor };
  }

  /** The whole keys of entries the caller listed with listPending (no authorization here), by pending id. */
  async publicKeysOf(pendingIds: readonly string[]): Promise<Map<string, string>> {
    return waitingKeys(this.#options.store.db, pendingIds);
  }

  /**
   * Registers a waiting (or denied) device. `org` names the organization of the route, which must be
   * the device's own; for a device waiting without one (system admins), where it goes.
   */
  async accept(actor: Actor, pendingId: string, options: { org?: string; name?: string; tags?: string[] }): Promise<Device> {
    const { row, org } = await this.#decidable(actor.principal, pendingId, options.org);
    if (!org) throw badRequest('Name the organization the device joins (org)');
    const info = JSON.parse(row.info) as AdmissionInfo;
    const device = await this.#options.store.transaction(async (tx) => {
      const removed = await tx.deleteFrom('pending_devices').where('id', '=', row.id).executeTakeFirst();
      if (removed.numDeletedRows !== 1n) throw conflict('The device was decided on already');
      const device = await insertDevice(tx, org.id, {
        name: options.name ?? info.name ?? row.external_id,
        model: info.model ?? null,
        firmware: info.firmware ?? null,
        metadata: info.metadata,
        tags: options.tags,
        externalId: row.external_id,
        publicKey: row.public_key,
      });
      const details = { pendingId: row.id, externalId: row.external_id, endpoint: row.endpoint, name: device.name, tags: device.tags };
      await recordAudit(tx, actor, { orgId: org.id, action: 'admission.accept', target: { type: 'device', id: device.id }, details });
      return device;
    });
    await this.#publish({ name: 'admission.accepted', orgId: org.id, deviceId: device.id, data: { pendingId: row.id, externalId: row.external_id, deviceId: device.id } });
    this.#announce({ pendingId: row.id, status: 'accepted', deviceId: device.id, orgId: org.id });
    return device;
  }

  /** Refuses a waiting device; it stays refused until the denial is forgotten. */
  async deny(actor: Actor, pendingId: string, options: { org?: string } = {}): Promise<PendingDevice> {
    const { row } = await this.#decidable(actor.principal, pendingId, options.org);
    const decision = { state: 'denied' as const, decided_by: actorRef(actor.principal).id, decided_at: nowIso() };
    await this.#options.store.transaction(async (tx) => {
      const updated = await tx.updateTable('pending_devices').set(decision).where('id', '=', row.id).where('state', '=', 'pending').executeTakeFirst();
      if (updated.numUpdatedRows !== 1n) throw conflict('The device was decided on already');
      await recordAudit(tx, actor, { orgId: row.org_id, action: 'admission.deny', target: { type: 'pending_device', id: row.id }, details: { externalId: row.external_id, endpoint: row.endpoint } });
    });
    await this.#publish({ name: 'admission.denied', orgId: row.org_id, deviceId: null, data: { pendingId: row.id, externalId: row.external_id } });
    this.#announce({ pendingId: row.id, status: 'denied', deviceId: null, orgId: row.org_id });
    return toPendingDevice({ ...row, ...decision });
  }

  /** Removes a denial, so that the device may ask again. */
  async forget(actor: Actor, pendingId: string, options: { org?: string } = {}): Promise<void> {
    const { row } = await this.#decidable(actor.principal, pendingId, options.org);
    await this.#options.store.transaction(async (tx) => {
      const removed = await tx.deleteFrom('pending_devices').where('id', '=', row.id).where('state', '=', 'denied').executeTakeFirst();
      if (removed.numDeletedRows !== 1n) throw conflict('Only a denial is forgotten; a waiting device is accepted or denied');
      await recordAudit(tx, actor, { orgId: row.org_id, action: 'admission.forget', target: { type: 'pending_device', id: row.id }, details: { externalId: row.external_id } });
    });
  }

  /**
   * The pending row, if the principal may decide on it: admins of its organization (which must be
   * the one named, if any), and for a row without organization only system admins. Others' rows
   * are not found.
   */
  async #decidable(principal: Principal, pendingId: string, orgIdOrSlug: string | undefined): Promise<{ row: PendingRow; org: Organization | undefined }> {
    const named = orgIdOrSlug === undefined ? undefined : await this.#options.organizations.resolve(orgIdOrSlug);
    if (named) authorize(principal, 'device.manage', { orgId: named.id });
    const row = await this.#options.store.db.selectFrom('pending_devices').selectAll().where('id', '=', pendingId).executeTakeFirst();
    if (!row || (named && row.org_id !== null && row.org_id !== named.id)) throw notFound('Pending device');
    if (row.org_id === null) {
      if (!isSystemAdmin(principal)) throw notFound('Pending device');
      return { row, org: named };
    }
    authorize(principal, 'device.manage', { orgId: row.org_id });
    return { row, org: named ?? (await this.#options.organizations.resolve(row.org_id)) };
  }

  async createToken(actor: Actor, orgIdOrSlug: string, input: { name: string; tags?: string[]; expiresAt?: string; maxUses?: number }): Promise<EnrollmentToken & { token: string }> {
    const org = await this.#options.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'device.manage', { orgId: org.id });
    if (input.expiresAt !== undefined && Date.parse(input.expiresAt) <= Date.now()) throw badRequest('expiresAt is in the past');
    const secret = newEnrollmentToken();
    const row = {
      id: newId('enr'),
      org_id: org.id,
      name: input.name,
      prefix: secret.prefix,
      token_hash: secret.hash,
      tags: JSON.stringify([...new Set(input.tags ?? [])].sort()),
      expires_at: input.expiresAt === undefined ? null : new Date(input.expiresAt).toISOString(),
      max_uses: input.maxUses ?? null,
      uses: 0,
      created_by: actorRef(actor.principal).id,
      created_at: nowIso(),
      revoked_at: null,
    };
    const token = toEnrollmentToken(row);
    await this.#options.store.transaction(async (tx) => {
      await tx.insertInto('enrollment_tokens').values(row).execute();
      const details = { name: token.name, tags: token.tags, expiresAt: token.expiresAt, maxUses: token.maxUses };
      await recordAudit(tx, actor, { orgId: org.id, action: 'enrollment_token.create', target: { type: 'enrollment_token', id: row.id }, details });
    });
    return { ...token, token: secret.token };
  }

  async listTokens(principal: Principal, orgIdOrSlug: string, filter: { revoked?: boolean }, page: PageRequest): Promise<Page<EnrollmentToken>> {
    const org = await this.#options.organizations.resolve(orgIdOrSlug);
    authorize(principal, 'device.manage', { orgId: org.id });
    let query = this.#options.store.db.selectFrom('enrollment_tokens').selectAll().where('org_id', '=', org.id);
    if (filter.revoked !== undefined) query = query.where('revoked_at', filter.revoked ? 'is not' : 'is', null);
    const result = await paginate(query, 'id', page);
    return { items: result.items.map(toEnrollmentToken), nextCursor: result.nextCursor };
  }

  async revokeToken(actor: Actor, orgIdOrSlug: string, tokenId: string): Promise<EnrollmentToken> {
    const org = await this.#options.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'device.manage', { orgId: org.id });
    const row = await this.#options.store.db.selectFrom('enrollment_tokens').selectAll().where('org_id', '=', org.id).where('id', '=', tokenId).executeTakeFirst();
    if (!row) throw notFound('Enrollment token');
    if (row.revoked_at !== null) return toEnrollmentToken(row);
    const revokedAt = nowIso();
    await this.#options.store.transaction(async (tx) => {
      await tx.updateTable('enrollment_tokens').set({ revoked_at: revokedAt }).where('id', '=', row.id).execute();
      await recordAudit(tx, actor, { orgId: org.id, action: 'enrollment_token.revoke', target: { type: 'enrollment_token', id: row.id }, details: { name: row.name } });
    });
    return toEnrollmentToken({ ...row, revoked_at: revokedAt });
  }

  /**
   * A signed check-in: `raw` is the body exactly as received, which the signature covers, and `body`
   * its parsed, validated form. A device with a known key is admitted at once; an unknown one goes
   * through the policy of the `checkin` endpoint, keeping its key for when it is accepted.
   */
  async checkin(request: { raw: Buffer; body: CheckinBody; signature: string | undefined; orgHint?: string; remoteAddress?: string }): Promise<AdmissionDecision> {
    const key = parseCheckinKey(request.body.publicKey);
    verifyCheckinSignature(key.key, request.raw, request.signature);
    return this.admitSigned({
      endpoint: 'checkin',
      externalId: request.body.deviceId,
      publicKey: key.pem,
      timestamp: request.body.timestamp,
      info: { metadata: request.body.metadata },
      ...(request.orgHint !== undefined && { orgHint: request.orgHint }),
      remoteAddress: request.remoteAddress,
    });
  }

  /**
   * Admits a device whose signature the caller verified (with parseCheckinKey and
   * verifyCheckinSignature: protocols word their refusals differently). `timestamp` is in
   * milliseconds; it must be within `checkinWindow` of the server clock and newer than the last one
   * accepted. With `replaceInfo`, an admitted device's model, firmware and metadata become what it
   * said now (RDFM overwrites a device's metadata at each authentication).
   */
  async admitSigned(request: SignedAdmission): Promise<AdmissionDecision> {
    checkCheckinClock(request.timestamp, this.#options.config.checkinWindow);
    const decision = await this.admit({
      endpoint: request.endpoint,
      externalId: request.externalId,
      info: request.info,
      publicKey: request.publicKey,
      ...(request.orgHint !== undefined && { orgHint: request.orgHint }),
      remoteAddress: request.remoteAddress,
    });
    if (decision.status === 'accepted') await this.#checkedIn(decision.device.id, request.timestamp, request.replaceInfo ? cleanInfo(request.info).info : undefined);
    return decision;
  }

  /** Keeps the newest timestamp accepted; one not newer is a replay of a captured check-in. */
  async #checkedIn(deviceId: string, timestamp: number, info: AdmissionInfo | undefined): Promise<void> {
    const at = nowIso(timestamp);
    const replaced = info && {
      model: info.model ?? null,
      firmware: info.firmware ?? null,
      // Bounded by cleanInfo, as the waiting room's entry is.
      metadata: JSON.stringify(info.metadata ?? {}),
      updated_at: nowIso(),
    };
    const write = (db: Db) =>
      db
        .updateTable('devices')
        .set({ checkin_at: at, last_seen_at: nowIso(), ...replaced })
        .where('id', '=', deviceId)
        .where((eb) => eb.or([eb('checkin_at', 'is', null), eb('checkin_at', '<', at)]))
        .executeTakeFirst();
    // Metadata decides dynamic groups, which nodes cache: a change goes through store.transaction, which tells them.
    const updated = replaced ? await this.#options.store.transaction(write) : await write(this.#options.store.db);
    if (updated.numUpdatedRows !== 1n) throw unauthenticated('This check-in is not newer than the last one accepted (a replay?); sign a fresh timestamp');
  }

  async #device(deviceId: string, orgId: string): Promise<Device> {
    const { devices } = this.#options;
    return devices.get(devices.principalFor({ id: deviceId, orgId }), orgId, deviceId);
  }

  async #organizationNamed(idOrSlug: string): Promise<Organization | undefined> {
    try {
      return await this.#options.organizations.resolve(idOrSlug);
    } catch (error) {
      if (error instanceof FleetError && error.code === 'not_found') return undefined;
      throw error;
    }
  }

  /** The change is committed already: an event that cannot go out is logged, not failed on. */
  async #publish(event: NewHubEvent): Promise<void> {
    try {
      await this.#options.events.publish(event);
    } catch (error) {
      this.#options.logger.warn({ err: error, event: event.name }, 'could not publish an admission event');
    }
  }

  #announce(decided: Decided): void {
    try {
      this.#options.bus.publish(decidedSubject, decided);
    } catch (error) {
      this.#options.logger.warn({ err: error, pendingId: decided.pendingId }, 'could not tell the other nodes of an admission decision');
    }
  }
}
