import { sql } from 'kysely';
import type { AdmissionEndpoint } from '../../config/keys.ts';
import type { StateDocument } from '../../core/device-state.ts';
import { newId } from '../../core/ids.ts';
import type { JsonValue } from '../../hub/bus.ts';
import type { Database } from '../../store/schema.ts';
import { isUniqueViolation, type Db } from '../../store/store.ts';
import { nowIso } from '../../store/page.ts';
import { keyFingerprint } from '../../core/public-keys.ts';

/** What a device says of itself when it asks to be admitted. */
export interface AdmissionInfo {
  name?: string;
  model?: string;
  firmware?: string;
  metadata?: StateDocument;
  /** The device's own greeting, as its protocol has it (a Shelly's GetDeviceInfo answer). */
  hello?: JsonValue;
}

export interface PendingDevice {
  id: string;
  /** Null while nobody has said which organization the device is for: then only system admins see it. */
  orgId: string | null;
  endpoint: AdmissionEndpoint;
  externalId: string;
  state: 'pending' | 'denied';
  info: AdmissionInfo;
  /** `SHA256:...` of the key a checking-in device signs with, to compare with what the device shows. */
  keyFingerprint: string | null;
  remoteAddress: string | null;
  /** How many times the device asked. */
  attempts: number;
  firstSeenAt: string;
  lastSeenAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
}

export type PendingRow = Database['pending_devices'];

export const toPendingDevice = (row: PendingRow): PendingDevice => ({
  id: row.id,
  orgId: row.org_id,
  endpoint: row.endpoint as AdmissionEndpoint,
  externalId: row.external_id,
  state: row.state,
  info: JSON.parse(row.info) as AdmissionInfo,
  keyFingerprint: row.public_key === null ? null : keyFingerprint(row.public_key),
  remoteAddress: row.remote_address,
  attempts: row.attempts,
  firstSeenAt: row.first_seen_at,
  lastSeenAt: row.last_seen_at,
  decidedBy: row.decided_by,
  decidedAt: row.decided_at,
});

/** The keys waiting devices sign with, whole (PEM), by pending id: RDFM's clients show them and name entries by them. */
export async function waitingKeys(db: Db, pendingIds: readonly string[]): Promise<Map<string, string>> {
  const keys = new Map<string, string>();
  for (let start = 0; start < pendingIds.length; start += 500) {
    const rows = await db.selectFrom('pending_devices').select(['id', 'public_key']).where('id', 'in', pendingIds.slice(start, start + 500)).execute();
    for (const row of rows) if (row.public_key !== null) keys.set(row.id, row.public_key);
  }
  return keys;
}

export interface Arrival {
  endpoint: AdmissionEndpoint;
  externalId: string;
  orgId: string | null;
  /** JSON text of the device's AdmissionInfo. */
  info: string;
  publicKey: string | null;
  remoteAddress: string | null;
}

export type WaitOutcome = { row: PendingRow; created: boolean } | { refused: string };

/**
 * Puts the device in the waiting room, or notes that it asked again (what it says of itself is
 * replaced; where it waits and the key it signs with are those of its first visit, so that a later
 * caller naming the same id cannot move it to another organization or slip in its own key).
 */
export async function enterWaitingRoom(db: Db, arrival: Arrival, capacity: number): Promise<WaitOutcome> {
  // A second try only when another request inserted the same device in between.
  for (let attempt = 0; attempt < 2; attempt++) {
    const now = nowIso();
    const existing = await db.selectFrom('pending_devices').selectAll().where('external_id', '=', arrival.externalId).executeTakeFirst();
    if (existing) {
      if (existing.state === 'denied') return { refused: 'The device was denied admission' };
      if (existing.public_key !== arrival.publicKey) return { refused: `Another device is waiting for admission as ${arrival.externalId}` };
      const values = { endpoint: arrival.endpoint, info: arrival.info, remote_address: arrival.remoteAddress, last_seen_at: now };
      await db.updateTable('pending_devices').set({ ...values, attempts: sql<number>`attempts + 1` }).where('id', '=', existing.id).execute();
      return { row: { ...existing, ...values, attempts: existing.attempts + 1 }, created: false };
    }
    const { waiting } = await db.selectFrom('pending_devices').select((eb) => eb.fn.countAll<number | string>().as('waiting')).where('state', '=', 'pending').executeTakeFirstOrThrow();
    // A soft bound: two devices arriving at once may both take the last place.
    if (Number(waiting) >= capacity) return { refused: 'The waiting room is full; try again later' };
    const row: PendingRow = {
      id: newId('pnd'),
      org_id: arrival.orgId,
      endpoint: arrival.endpoint,
      external_id: arrival.externalId,
      state: 'pending',
      info: arrival.info,
      public_key: arrival.publicKey,
      remote_address: arrival.remoteAddress,
      attempts: 1,
      first_seen_at: now,
      last_seen_at: now,
      decided_by: null,
      decided_at: null,
    };
    try {
      await db.insertInto('pending_devices').values(row).execute();
      return { row, created: true };
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
    }
  }
  return { refused: `Another device is waiting for admission as ${arrival.externalId}` };
}
