import { FleetError } from '../core/errors.ts';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
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
    private readonly db: Kysely<Database>,
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
    const blockedUntil = nowIso(now + windowMs);
    // One statement counting on the stored row: concurrent failures (other requests, other nodes)
    // all add up, where reading the count first and writing it after loses some on PostgreSQL.
    const fresh = sql<boolean>`auth_throttle.window_start <= ${nowIso(now - windowMs)}`;
    const failures = sql<number>`case when ${fresh} then 1 else auth_throttle.failures + 1 end`;
    const row = await this.db
      .insertInto('auth_throttle')
      .values({ key, failures: 1, window_start: nowIso(now), blocked_until: this.limits.maxFailures <= 1 ? blockedUntil : null })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          failures,
          window_start: sql<string>`case when ${fresh} then ${nowIso(now)} else auth_throttle.window_start end`,
          blocked_until: sql<string | null>`case when ${failures} >= ${this.limits.maxFailures} then ${blockedUntil} else null end`,
        }),
      )
      .returning('blocked_until')
      .executeTakeFirstOrThrow();
    return row.blocked_until !== null;
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
