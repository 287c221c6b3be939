import type { Bus } from '../../hub/bus.ts';
import type { Logger } from '../../log.ts';

/** Bus subject of update notices: `{deviceIds: string[]}`, heard by every node (src/hub/update-notices.ts). */
export const updatesAvailableSubject = 'fleetd.updates.available';

/** Device ids per notice: a notice stays far below the bus's payload limit. */
export const noticeChunkSize = 500;

/**
 * Tells devices that something may wait for them to update to (a policy or package set changed, a
 * deployment phase started), so that those online check at once instead of at their next poll. A
 * notice is a hint: a device told in vain gets 204 from its check, and one that misses a notice
 * finds the update on its next check.
 */
export class UpdateNotices {
  readonly #bus: Bus;
  readonly #logger: Logger;

  constructor(bus: Bus, logger: Logger) {
    this.#bus = bus;
    this.#logger = logger;
  }

  publish(deviceIds: readonly string[]): void {
    for (let start = 0; start < deviceIds.length; start += noticeChunkSize) {
      try {
        this.#bus.publish(updatesAvailableSubject, { deviceIds: deviceIds.slice(start, start + noticeChunkSize) });
      } catch (error) {
        this.#logger.warn({ err: error, devices: deviceIds.length }, 'could not publish an update notice');
      }
    }
  }
}
