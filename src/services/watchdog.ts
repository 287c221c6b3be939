import { resourceTypeCodes, fullPathOf } from '../core/resource-paths.ts';
import type { Logger } from '../log.ts';
import { nowIso } from '../store/page.ts';
import type { Store } from '../store/store.ts';
import type { Mailer } from './mailer.ts';
import { changeSystemAttributes, parseAttributes } from './system-attributes.ts';

const checkIntervalMs = 60_000;

/**
 * rhizo's controller watchdog: a controller folder whose system_attributes set `watchdog_minutes`
 * (> 0) and `watchdog_recipients` (comma list) and whose last `watchdog` message is older than that
 * gets one "<path> is offline" email; the next watchdog message arms it again. State lives in the
 * folder's system_attributes (`last_watchdog_timestamp`, `watchdog_notification_sent`). Every node
 * checks; the flag is set by compare-and-swap, so only one node sends.
 *
 * rhizo also sends SMS to recipients without `@` (Twilio); fleetd has no SMS gateway and skips them.
 */
export class ControllerWatchdog {
  readonly #store: Store;
  readonly #mailer: Mailer;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();

  constructor(options: { store: Store; mailer: Mailer; logger: Logger }) {
    this.#store = options.store;
    this.#mailer = options.mailer;
    this.#logger = options.logger;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#running = this.check().catch((error: unknown) => this.#logger.warn({ err: error }, 'controller watchdog check failed'));
    }, checkIntervalMs);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** A controller's `watchdog` message: it is alive now, and may be reported offline again later. */
  async seen(folderId: string, now = Date.now()): Promise<void> {
    await changeSystemAttributes(this.#store.db, folderId, (current) => ({ ...current, last_watchdog_timestamp: nowIso(now), watchdog_notification_sent: false }));
  }

  /** Emails the controllers that went silent since the last check; returns how many were reported. */
  async check(now = Date.now()): Promise<number> {
    const rows = await this.#store.db
      .selectFrom('resources')
      .innerJoin('organizations', 'organizations.id', 'resources.org_id')
      .select(['resources.id', 'resources.path', 'resources.system_attributes', 'organizations.slug'])
      .where('resources.type', '=', resourceTypeCodes.controller_folder)
      .where('resources.deleted', '=', 0)
      // Most controllers have no watchdog: the text match keeps them from being read and parsed each minute.
      .where('resources.system_attributes', 'like', '%watchdog_minutes%')
      .execute();
    let reported = 0;
    for (const row of rows) {
      const watch = watchOf(parseAttributes(row.system_attributes), now);
      if (!watch) continue;
      const claimed = await changeSystemAttributes(this.#store.db, row.id, (current) => {
        const again = watchOf(current, now);
        return again ? { ...current, watchdog_notification_sent: true } : undefined;
      });
      if (!claimed) continue;
      reported += 1;
      await this.#notify(fullPathOf(row.slug, row.path), watch);
    }
    return reported;
  }

  async #notify(path: string, watch: Watch): Promise<void> {
    const emails = watch.recipients.filter((r) => r.includes('@'));
    const others = watch.recipients.filter((r) => !r.includes('@'));
    if (others.length > 0) this.#logger.warn({ path, recipients: others }, 'watchdog: SMS recipients skipped, fleetd sends no SMS');
    if (emails.length === 0) return;
    if (!this.#mailer.configured) {
      this.#logger.warn({ path }, 'watchdog: controller offline, but email is not configured');
      return;
    }
    try {
      await this.#mailer.send({ to: emails, subject: `${path} is offline`, body: `${path} is offline: no watchdog message since ${watch.last}.` });
      this.#logger.info({ path, recipients: emails }, 'watchdog: controller reported offline');
    } catch (error) {
      this.#logger.error({ err: error, path }, 'watchdog: the offline email could not be sent');
    }
  }
}

interface Watch {
  recipients: string[];
  last: string;
}

/** What to send when the attributes describe a watched controller silent for too long, not yet reported. */
function watchOf(attributes: Record<string, unknown>, now: number): Watch | undefined {
  const minutes = Number(attributes.watchdog_minutes);
  const recipients = String(attributes.watchdog_recipients ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
  const last = typeof attributes.last_watchdog_timestamp === 'string' ? attributes.last_watchdog_timestamp : '';
  const lastMs = Date.parse(last);
  // A controller never heard from has not gone offline: as rhizo, only a silence after a watchdog counts.
  if (!(minutes > 0) || recipients.length === 0 || Number.isNaN(lastMs)) return undefined;
  if (attributes.watchdog_notification_sent === true || lastMs >= now - minutes * 60_000) return undefined;
  return { recipients, last };
}
