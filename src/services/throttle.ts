import { FleetError } from '../core/errors.ts';
import type { Db } from '../store/store.ts';
import { nowIso } from '../store/page.ts';

export interface ThrottleLimits {
  maxFailures: number;
  /** Seconds over which failures count, and how long a block lasts. */
  windowSeconds: number;
}

/**
 * Counts failed authentication attempts per source address, in the store so that every node
 * of a cluster sees the same count. `key` is `<kind>:<address>` (`login:10.0.0.7`).
 */
export class Throttle {
  constructor(
    private readonly db: Db,
    private readonly limits: ThrottleLimits,
  ) {}

  /** Throws rate_limited while `key` is blocked. */
  async assertAllowed(key: string): Promise<void> {
    const row = await this.db.selectFrom('auth_throttle').select('blocked_until').where('key', '=', key).executeTakeFirst();
    const now = Date.now();
    if (row?.blocked_until && Date.parse(row.blocked_until) > now) {
      const retryAfter = Math.ceil((Date.parse(row.blocked_until) - now) / 1000);
      throw new FleetError('rate_limited', 'Too many failed attempts from your address; try again later', { retryAfter });
    }
  }

  /** Records a failure; returns true when this failure blocks the key. */
  async recordFailure(key: string): Promise<boolean> {
    const now = Date.now();
    const windowMs = this.limits.windowSeconds * 1000;
    return this.db.transaction().execute(async (tx) => {
      const row = await tx.selectFrom('auth_throttle').selectAll().where('key', '=', key).executeTakeFirst();
      const fresh = !row || Date.parse(row.window_start) + windowMs <= now;
      const failures = fresh ? 1 : row.failures + 1;
      const blockedUntil = failures >= this.limits.maxFailures ? nowIso(now + windowMs) : null;
      const values = { failures, window_start: fresh ? nowIso(now) : row.window_start, blocked_until: blockedUntil };
      await tx
        .insertInto('auth_throttle')
        .values({ key, ...values })
        .onConflict((oc) => oc.column('key').doUpdateSet(values))
        .execute();
      return blockedUntil !== null;
    });
  }

  /** Forgets entries whose window and block are both over. */
  async prune(): Promise<void> {
    const cutoff = nowIso(Date.now() - this.limits.windowSeconds * 1000);
    await this.db
      .deleteFrom('auth_throttle')
      .where('window_start', '<', cutoff)
      .where((eb) => eb.or([eb('blocked_until', 'is', null), eb('blocked_until', '<', nowIso())]))
      .execute();
  }
}
