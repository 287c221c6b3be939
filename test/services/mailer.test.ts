import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SMTPServer } from 'smtp-server';
import { createLogger } from '../../src/log.ts';
import { Mailer } from '../../src/services/mailer.ts';
import { ControllerWatchdog } from '../../src/services/watchdog.ts';
import { nowIso } from '../../src/store/page.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { backends, type TestDatabase } from '../helpers/backends.ts';
import { readUntil } from '../helpers/waiting.ts';

/**
 * Email through a real SMTP server (smtp-server, in this process): what arrives, the per-device
 * hourly limit shared by two nodes, and the controller watchdog reporting a silent controller once.
 */

const silent = createLogger('silent');

interface Received {
  from: string;
  to: string[];
  text: string;
}

/** An SMTP server on a free port that keeps every message it is given. */
async function startSmtp(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      let text = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (text += chunk));
      stream.on('end', () => {
        received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), text });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return { url: `smtp://127.0.0.1:${port}`, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const config = (smtpUrl: string, emailRateLimit = 3) => ({ smtpUrl, smtpFrom: 'fleetd@example.com', emailRateLimit });

for (const backend of await backends()) {
  describe(`mailer and watchdog on ${backend.name}`, { skip: backend.skip }, () => {
    let database: TestDatabase;
    let stores: [Store, Store];
    let smtp: Awaited<ReturnType<typeof startSmtp>>;
    let mailers: [Mailer, Mailer];

    before(async () => {
      database = await backend.create();
      stores = [openStore(database.url), openStore(database.url)];
      await stores[0].migrate();
      smtp = await startSmtp();
      mailers = [new Mailer({ store: stores[0], config: config(smtp.url), logger: silent }), new Mailer({ store: stores[1], config: config(smtp.url), logger: silent })];
      const at = nowIso();
      await stores[0].db.insertInto('organizations').values({ id: 'org_a', slug: 'acme', name: 'Acme', created_at: at, updated_at: at }).execute();
      const row = { org_id: 'org_a', device_id: null, user_attributes: '{}', permissions: null, last_revision_id: null, deleted: 0, created_at: at, modified_at: at };
      await stores[0].db
        .insertInto('resources')
        .values([
          { ...row, id: 'res_root', parent_id: null, name: 'acme', path: '', type: 11, system_attributes: '{}' },
          { ...row, id: 'res_ctrl', parent_id: 'res_root', name: 'ctrl', path: '/ctrl', type: 12, system_attributes: JSON.stringify({ watchdog_minutes: '5', watchdog_recipients: 'ops@example.com, +15551234567' }) },
          { ...row, id: 'res_quiet', parent_id: 'res_root', name: 'quiet', path: '/quiet', type: 12, system_attributes: JSON.stringify({ watchdog_minutes: 5, watchdog_recipients: 'ops@example.com' }) },
        ])
        .execute();
    });

    after(async () => {
      mailers.forEach((m) => m.close());
      await smtp.close();
      await Promise.all(stores.map((s) => s.close()));
      await database.drop();
    });

    it('sends an email through the SMTP server, with line breaks taken out of the subject', async () => {
      await mailers[0].send({ to: ['a@example.com', 'b@example.com'], subject: 'Hello\r\nBcc: evil@example.com', body: 'The body.' });
      const [mail] = await readUntil(() => smtp.received.splice(0), (r) => r.length === 1);
      assert.equal(mail!.from, 'fleetd@example.com');
      assert.deepEqual(mail!.to, ['a@example.com', 'b@example.com']);
      assert.match(mail!.text, /^Subject: Hello Bcc: evil@example.com\r$/m);
      assert.doesNotMatch(mail!.text, /^Bcc:/m);
      assert.match(mail!.text, /The body\./);
    });

    it('refuses what is not an email, and says when email is not configured', async () => {
      await assert.rejects(mailers[0].send({ to: [], subject: 's', body: 'b' }), { code: 'bad_request' });
      await assert.rejects(mailers[0].send({ to: ['a@example.com>, <b@example.com'], subject: 's', body: 'b' }), { code: 'bad_request' });
      await assert.rejects(mailers[0].send({ to: ['nobody'], subject: 's', body: 'b' }), { code: 'bad_request' });
      await assert.rejects(mailers[0].send({ to: ['a@example.com'], subject: 's', body: 'x'.repeat(65 * 1024) }), { code: 'bad_request' });
      const off = new Mailer({ store: stores[0], config: config(''), logger: silent });
      assert.equal(off.configured, false);
      await assert.rejects(off.sendAsDevice('dev_1', { to: ['a@example.com'], subject: 's', body: 'b' }), { code: 'unavailable', message: 'Email is not configured' });
    });

    it('holds each device to its hourly limit across nodes, dropping the rest', async () => {
      const email = { to: ['ops@example.com'], subject: 'from a device', body: 'b' };
      const results = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => mailers[i % 2]!.sendAsDevice('dev_limited', email)));
      assert.equal(results.filter(Boolean).length, 3);
      // Another device has its own allowance.
      assert.equal(await mailers[1].sendAsDevice('dev_other', email), true);
      const mails = await readUntil(() => smtp.received, (r) => r.length >= 4);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(mails.length, 4);
      const counter = await stores[0].db.selectFrom('send_counters').selectAll().where('key', '=', 'email:dev_limited').executeTakeFirstOrThrow();
      assert.equal(counter.count, 6);
      smtp.received.length = 0;
    });

    it('reports a silent controller once, from one node only, and again after it came back and went silent', async () => {
      const watchdogs = [0, 1].map((i) => new ControllerWatchdog({ store: stores[i]!, mailer: mailers[i]!, logger: silent }));
      const now = Date.now();
      await watchdogs[0]!.seen('res_ctrl', now - 10 * 60_000);
      // res_quiet never sent a watchdog: it has not gone offline.
      const counts = await Promise.all(watchdogs.map((w) => w.check(now)));
      assert.equal(counts[0]! + counts[1]!, 1);
      const [mail] = await readUntil(() => smtp.received, (r) => r.length >= 1);
      assert.deepEqual(mail!.to, ['ops@example.com']);
      assert.match(mail!.text, /^Subject: \/acme\/ctrl is offline\r$/m);
      assert.equal(await watchdogs[1]!.check(now + 60_000), 0);

      await watchdogs[1]!.seen('res_ctrl', now);
      assert.equal(await watchdogs[0]!.check(now + 60_000), 0);
      assert.equal(await watchdogs[0]!.check(now + 6 * 60_000), 1);
      await readUntil(() => smtp.received, (r) => r.length >= 2);
      const attributes = JSON.parse((await stores[0].db.selectFrom('resources').select('system_attributes').where('id', '=', 'res_ctrl').executeTakeFirstOrThrow()).system_attributes);
      assert.equal(attributes.watchdog_notification_sent, true);
      assert.equal(attributes.last_watchdog_timestamp, new Date(now).toISOString());
      assert.equal(attributes.watchdog_minutes, '5');
    });
  });
}
