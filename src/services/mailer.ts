import { sql } from 'kysely';
import nodemailer, { type Transporter } from 'nodemailer';
import type { Config } from '../config/keys.ts';
import { badRequest, FleetError } from '../core/errors.ts';
import type { Logger } from '../log.ts';
import { nowIso } from '../store/page.ts';
import type { Store } from '../store/store.ts';

export interface Email {
  to: string[];
  subject: string;
  body: string;
}

const maxRecipients = 20;
const maxSubjectLength = 200;
const maxBodyBytes = 64 * 1024;
const rateWindowMs = 3600_000;
// One address, nothing that would let a device add recipients or headers (separators, brackets, line breaks).
const addressPattern = /^[^\s@<>,;:"()[\]\\]+@[^\s@<>,;:"()[\]\\]+$/;

/**
 * Email through the configured SMTP server (smtpUrl): what devices send (rhizo's send_email) and
 * what the controller watchdog says. Devices are held to emailRateLimit messages an hour each,
 * counted in the store so that every node of a cluster counts against the same limit.
 */
export class Mailer {
  readonly #store: Store;
  readonly #from: string;
  readonly #limit: number;
  readonly #logger: Logger;
  readonly #transport: Transporter | undefined;

  constructor(options: { store: Store; config: Pick<Config, 'smtpUrl' | 'smtpFrom' | 'emailRateLimit'>; logger: Logger }) {
    this.#store = options.store;
    this.#from = options.config.smtpFrom;
    this.#limit = options.config.emailRateLimit;
    this.#logger = options.logger;
    this.#transport = options.config.smtpUrl ? nodemailer.createTransport(options.config.smtpUrl) : undefined;
  }

  get configured(): boolean {
    return this.#transport !== undefined;
  }

  /** Sends one email; the recipients, subject and body are checked first. */
  async send(email: Email): Promise<void> {
    const transport = this.#transportOrThrow();
    const message = checkEmail(email);
    try {
      await transport.sendMail({ from: this.#from, to: message.to, subject: message.subject, text: message.body });
    } catch (error) {
      throw new FleetError('unavailable', 'The email could not be sent', { cause: error });
    }
  }

  /**
   * Sends an email on behalf of a device, unless the device has sent emailRateLimit of them in the
   * current hour: then it is dropped (as rhizo drops them) and false is returned.
   */
  async sendAsDevice(deviceId: string, email: Email): Promise<boolean> {
    this.#transportOrThrow();
    checkEmail(email);
    const count = await this.#count(`email:${deviceId}`);
    if (count > this.#limit) {
      this.#logger.warn({ deviceId, count, limit: this.#limit }, 'email of a device dropped: over its hourly limit');
      return false;
    }
    await this.send(email);
    return true;
  }

  close(): void {
    this.#transport?.close();
  }

  #transportOrThrow(): Transporter {
    if (!this.#transport) throw new FleetError('unavailable', 'Email is not configured');
    return this.#transport;
  }

  /**
   * Counts one more send of `key` in the current window and returns the count. One statement on the
   * stored row, so that concurrent sends (of other connections, other nodes) all add up.
   */
  async #count(key: string, now = Date.now()): Promise<number> {
    const stale = sql<boolean>`send_counters.window_start <= ${nowIso(now - rateWindowMs)}`;
    const row = await this.#store.db
      .insertInto('send_counters')
      .values({ key, window_start: nowIso(now), count: 1 })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          count: sql<number>`case when ${stale} then 1 else send_counters.count + 1 end`,
          window_start: sql<string>`case when ${stale} then ${nowIso(now)} else send_counters.window_start end`,
        }),
      )
      .returning('count')
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }
}

function checkEmail(email: Email): Email {
  const { to, subject, body } = email;
  if (!Array.isArray(to) || to.length === 0 || to.length > maxRecipients) throw badRequest(`An email goes to 1 to ${maxRecipients} addresses`);
  for (const address of to) {
    if (typeof address !== 'string' || address.length > 254 || !addressPattern.test(address)) throw badRequest(`Not an email address: ${JSON.stringify(String(address).slice(0, 80))}`);
  }
  if (typeof subject !== 'string' || subject.length > maxSubjectLength) throw badRequest(`An email subject is a text of at most ${maxSubjectLength} characters`);
  if (typeof body !== 'string' || Buffer.byteLength(body) > maxBodyBytes) throw badRequest(`An email body is a text of at most ${maxBodyBytes} bytes`);
  // A line break in a subject would start a header of the sender's choosing.
  return { to, subject: subject.replace(/[\r\n]+/g, ' '), body };
}
