import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Config, ConfigKey } from '../../src/config/keys.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { Principal } from '../../src/core/access.ts';
import type { Bus } from '../../src/hub/bus.ts';
import { EventStream, type HubEvent } from '../../src/hub/events.ts';
import { openBus } from '../../src/hub/open.ts';
import { createLogger } from '../../src/log.ts';
import { systemActor, type Actor } from '../../src/services/actor.ts';
import { Admission, type AdmissionDecision, type AdmissionRequest, type FinalDecision } from '../../src/services/admission.ts';
import { createServices, type Services } from '../../src/services/index.ts';
import { insertUser } from '../../src/services/users.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { backends } from '../helpers/backends.ts';
import { busBackends } from '../hub/buses.ts';

/**
 * Admission as the device adapters call it: every way a device gets in or is kept out, against both
 * databases, and decisions travelling to the node where the device waits.
 */

const silent = createLogger('silent');

interface Node {
  store: Store;
  events: EventStream;
  services: Services;
  config: Config;
  close(): Promise<void>;
}

/** One fleetd node's services on a database and a bus, as startServer builds them. */
async function startServices(databaseUrl: string, bus: Bus, flags: Partial<Record<ConfigKey, string>> = {}): Promise<Node> {
  const data = mkdtempSync(join(tmpdir(), 'fleetd-admission-'));
  const { config } = loadConfig({ env: {}, cwd: data, flags: { logLevel: 'silent', data, database: databaseUrl, ...flags } });
  const store = openStore(databaseUrl);
  await store.migrate();
  const events = new EventStream({ store, bus, logger: silent, retentionSeconds: config.eventRetention, replayMax: config.eventReplayMax });
  await events.start();
  const services = await createServices(store, config, bus, silent, events);
  return {
    store,
    events,
    services,
    config,
    async close() {
      await events.close();
      await store.close();
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/** Resolves with the first decision reaching `waitForDecision`, or fails after `ms`. */
function decisionOf(admission: Admission, pendingId: string, ms = 10_000): Promise<FinalDecision> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no decision on ${pendingId} within ${ms} ms`)), ms);
    admission.waitForDecision(pendingId, (decision) => {
      clearTimeout(timer);
      resolve(decision);
    });
  });
}

function accepted(decision: AdmissionDecision, via?: string) {
  assert.equal(decision.status, 'accepted', JSON.stringify(decision));
  if (via) assert.equal(decision.status === 'accepted' && decision.via, via);
  return (decision as Extract<AdmissionDecision, { status: 'accepted' }>).device;
}

function deniedFor(decision: AdmissionDecision, reason: RegExp) {
  assert.equal(decision.status, 'denied', JSON.stringify(decision));
  assert.match((decision as { reason: string }).reason, reason);
}

function pendingId(decision: AdmissionDecision): string {
  assert.equal(decision.status, 'pending', JSON.stringify(decision));
  return (decision as { pendingId: string }).pendingId;
}

for (const backend of await backends()) {
  describe(`admission [${backend.name}]`, { skip: backend.skip }, () => {
    let database: Awaited<ReturnType<typeof backend.create>>;
    let bus: Bus;
    let node: Node;
    let admission: Admission;
    let orgId: string;
    let otherOrgId: string;
    let admin: Actor;
    const heard: HubEvent[] = [];
    let serial = 0;
    const nextId = (what: string) => `${what}-${backend.name}-${++serial}`;
    // The shelly endpoint is open, the relay takes tokens only, the others wait for an admin.
    const request = (endpoint: AdmissionRequest['endpoint'], externalId: string, extra: Partial<AdmissionRequest> = {}): AdmissionRequest => ({ endpoint, externalId, info: {}, ...extra });
    const countRows = async (table: 'devices' | 'pending_devices') => Number((await node.store.db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const auditOf = (action: string) => node.store.db.selectFrom('audit_events').selectAll().where('action', '=', action).orderBy('id').execute();

    before(async () => {
      database = await backend.create();
      bus = await openBus('memory', silent);
      node = await startServices(database.url, bus, { admission: 'manual', admissionEndpoints: '{shelly: open, relay: token}' });
      admission = node.services.admission;
      node.events.listen((event) => heard.push(event));
      const user = await insertUser(node.store.db, { email: 'admin@example.com', password: 'admin-password-1', systemAdmin: false });
      orgId = (await node.services.organizations.create(systemActor, { slug: 'acme', name: 'Acme', ownerId: user.id })).id;
      otherOrgId = (await node.services.organizations.create(systemActor, { slug: 'other', name: 'Other' })).id;
      admin = { principal: (await node.services.sessions.principalForUser(user.id, { via: 'token' }))!, ip: '192.0.2.1' };
    });
    after(async () => {
      await node?.close();
      await bus?.close();
      await database?.drop();
    });

    it('takes the policy of the endpoint, else the general one', () => {
      assert.equal(admission.policyFor('shelly'), 'open');
      assert.equal(admission.policyFor('relay'), 'token');
      assert.equal(admission.policyFor('devices'), 'manual');
      assert.equal(admission.policyFor('checkin'), 'manual');
    });

    it('open: registers the device in the organization its URL names, audited; without one it is refused', async () => {
      const id = nextId('open');
      const device = accepted(await admission.admit(request('shelly', id, { orgHint: 'acme', info: { name: ' Hall plug ', model: 'SNPL-00112EU', firmware: '1.4.4', hello: { src: id } } })), 'open');
      assert.deepEqual([device.orgId, device.externalId, device.name, device.model, device.firmware], [orgId, id, 'Hall plug', 'SNPL-00112EU', '1.4.4']);
      const audit = (await auditOf('admission.open')).at(-1)!;
      assert.deepEqual([audit.target_id, audit.actor_type, audit.actor_id, audit.org_id], [device.id, 'device', device.id, orgId]);
      const before = await countRows('devices');
      deniedFor(await admission.admit(request('shelly', nextId('open'))), /\?org=/);
      deniedFor(await admission.admit(request('shelly', nextId('open'), { orgHint: 'no-such-org' })), /\?org=/);
      assert.equal(await countRows('devices'), before);
    });

    it('token: refuses a device with neither enrollment token nor key', async () => {
      deniedFor(await admission.admit(request('relay', nextId('relay'), { orgHint: 'acme' })), /an enrollment token or device key is required/i);
    });

    it('a known external id is admitted as its device (the id is no secret: see the comment in admit)', async () => {
      const id = nextId('known');
      const first = accepted(await admission.admit(request('shelly', id, { orgHint: 'acme' })), 'open');
      const before = await countRows('devices');
      for (const endpoint of ['shelly', 'relay', 'devices'] as const) {
        const again = accepted(await admission.admit(request(endpoint, id)), 'known');
        assert.equal(again.id, first.id);
      }
      assert.equal(await countRows('devices'), before);
    });

    it('manual: the device waits; asking again counts, replaces what it said, and is announced once', async () => {
      const id = nextId('manual');
      const firstAsk = pendingId(await admission.admit(request('devices', id, { orgHint: 'acme', info: { model: 'A' }, remoteAddress: '198.51.100.7' })));
      const secondAsk = pendingId(await admission.admit(request('devices', id, { orgHint: 'other', info: { model: 'B' } })));
      assert.equal(secondAsk, firstAsk);
      const [row] = (await admission.listPending(admin.principal, 'acme', {}, {})).items.filter((p) => p.id === firstAsk);
      assert.ok(row, 'it waits in the organization it named first');
      assert.deepEqual([row.attempts, row.info.model, row.state, row.externalId, row.endpoint], [2, 'B', 'pending', id, 'devices']);
      await waitFor(() => heard.some((e) => e.name === 'admission.pending' && e.data.pendingId === firstAsk));
      assert.equal(heard.filter((e) => e.name === 'admission.pending' && e.data.pendingId === firstAsk).length, 1);
      assert.equal(heard.find((e) => e.data.pendingId === firstAsk)!.orgId, orgId);
    });

    it('manual: an unknown organization waits for the system admins; only they see it, and a full waiting room refuses more', async () => {
      const id = nextId('orphan');
      const orphan = pendingId(await admission.admit(request('devices', id, { orgHint: 'no-such-org' })));
      const listed = await admission.listPending(systemActor.principal, undefined, { state: 'pending' }, {});
      assert.ok(listed.items.some((p) => p.id === orphan && p.orgId === null));
      await assert.rejects(admission.listPending(admin.principal, undefined, {}, {}), { code: 'forbidden' });
      await assert.rejects(admission.accept(admin, orphan, {}), { code: 'not_found' });
      await assert.rejects(admission.accept(admin, orphan, { org: 'acme' }), { code: 'not_found' });

      const waiting = Number((await node.store.db.selectFrom('pending_devices').select((eb) => eb.fn.countAll().as('n')).where('state', '=', 'pending').executeTakeFirstOrThrow()).n);
      const full = new Admission({ store: node.store, organizations: node.services.organizations, devices: node.services.devices, events: node.events, bus, config: { ...node.config, waitingRoomSize: waiting }, logger: silent });
      const before = await countRows('pending_devices');
      deniedFor(await full.admit(request('devices', nextId('crowd'), { orgHint: 'acme' })), /waiting room is full/);
      assert.equal(await countRows('pending_devices'), before);
      assert.equal(pendingId(await full.admit(request('devices', id))), orphan, 'one already waiting may still ask again');
    });

    it('accept registers the device with what it said and the tags given, audited and announced; the entry is gone after', async () => {
      const id = nextId('accept');
      const waiting = pendingId(await admission.admit(request('devices', id, { orgHint: 'acme', info: { model: 'SNSW-001X16EU', firmware: '1.0', metadata: { room: 'hall' } } })));
      const decision = decisionOf(admission, waiting);
      const device = await admission.accept(admin, waiting, { tags: ['hall', 'light'] });
      assert.deepEqual([device.name, device.externalId, device.model, device.firmware, device.tags, device.metadata], [id, id, 'SNSW-001X16EU', '1.0', ['hall', 'light'], { room: 'hall' }]);
      const told = await decision;
      assert.equal(told.status, 'accepted');
      assert.equal(told.status === 'accepted' && told.device.id, device.id);
      const audit = (await auditOf('admission.accept')).at(-1)!;
      assert.deepEqual([audit.target_id, audit.actor_id, audit.ip, audit.org_id], [device.id, (admin.principal as { userId: string }).userId, '192.0.2.1', orgId]);
      await waitFor(() => heard.some((e) => e.name === 'admission.accepted' && e.data.pendingId === waiting && e.deviceId === device.id));
      await assert.rejects(admission.accept(admin, waiting, {}), { code: 'not_found' });
      accepted(await admission.admit(request('devices', id)), 'known');
    });

    it('deny is remembered whatever the policy, audited and announced; forget lets the device ask again', async () => {
      const id = nextId('deny');
      const waiting = pendingId(await admission.admit(request('devices', id, { orgHint: 'acme' })));
      const decision = decisionOf(admission, waiting);
      const row = await admission.deny(admin, waiting, { org: 'acme' });
      assert.equal(row.state, 'denied');
      assert.equal(row.decidedBy, (admin.principal as { userId: string }).userId);
      assert.deepEqual(await decision, { status: 'denied', reason: 'An administrator denied the device admission' });
      assert.equal((await auditOf('admission.deny')).at(-1)!.target_id, waiting);
      await waitFor(() => heard.some((e) => e.name === 'admission.denied' && e.data.pendingId === waiting));
      await assert.rejects(admission.deny(admin, waiting), { code: 'conflict' });
      for (const endpoint of ['devices', 'shelly', 'relay'] as const) deniedFor(await admission.admit(request(endpoint, id, { orgHint: 'acme' })), /denied/);

      const other = pendingId(await admission.admit(request('devices', nextId('deny'), { orgHint: 'acme' })));
      await assert.rejects(admission.forget(admin, other), { code: 'conflict' }, 'a waiting device is accepted or denied, not forgotten');
      await admission.forget(admin, waiting);
      assert.equal((await auditOf('admission.forget')).at(-1)!.target_id, waiting);
      assert.notEqual(pendingId(await admission.admit(request('devices', id, { orgHint: 'acme' }))), waiting);
    });

    it("only the organization's admins decide: another organization's rows are not found, and other members may not", async () => {
      const waiting = pendingId(await admission.admit(request('devices', nextId('scope'), { orgHint: 'other' })));
      await assert.rejects(admission.accept(admin, waiting, {}), { code: 'not_found' });
      await assert.rejects(admission.deny(admin, waiting), { code: 'not_found' });
      await assert.rejects(admission.accept(admin, waiting, { org: 'acme' }), { code: 'not_found' });
      await assert.rejects(admission.listPending(admin.principal, 'other', {}, {}), { code: 'not_found' });
      const operatorId = (await insertUser(node.store.db, { email: `operator-${backend.name}@example.com`, password: 'operator-password-1', systemAdmin: false })).id;
      await node.store.db.insertInto('memberships').values({ org_id: otherOrgId, user_id: operatorId, role: 'operator', created_at: new Date().toISOString(), updated_at: new Date().toISOString() }).execute();
      const operator = { principal: (await node.services.sessions.principalForUser(operatorId, { via: 'token' }))! };
      await assert.rejects(admission.accept(operator, waiting, {}), { code: 'forbidden' });
      await assert.rejects(admission.listPending(operator.principal, 'other', {}, {}), { code: 'forbidden' });
      assert.equal((await admission.accept(systemActor, waiting, { org: 'other' })).orgId, otherOrgId);
    });

    it('a device key admits its own device, records the id it first names, and cannot pose as another device', async () => {
      const lamp = await node.services.devices.create(admin, 'acme', { name: 'lamp' });
      const fan = await node.services.devices.create(admin, 'acme', { name: 'fan', externalId: nextId('fan') });
      const lampKey: Principal = { kind: 'device', deviceId: lamp.id, orgId, keyId: 'key_lamp' };
      const lampId = nextId('lamp');
      deniedFor(await admission.admit(request('devices', fan.externalId!, { principal: lampKey })), /another device is registered as/i);
      const first = accepted(await admission.admit(request('relay', lampId, { principal: lampKey })), 'key');
      assert.equal(first.externalId, lampId);
      assert.equal((await auditOf('device.bind')).at(-1)!.target_id, lamp.id);
      assert.equal(accepted(await admission.admit(request('devices', lampId, { principal: lampKey })), 'key').id, lamp.id);
      assert.equal(accepted(await admission.admit(request('devices', '', { principal: lampKey })), 'key').id, lamp.id);
      const before = await node.store.db.selectFrom('devices').select(['id', 'external_id']).orderBy('id').execute();
      deniedFor(await admission.admit(request('devices', fan.externalId!, { principal: lampKey })), /belongs to device/);
      deniedFor(await admission.admit(request('devices', nextId('other'), { principal: lampKey })), /belongs to device/);
      assert.deepEqual(await node.store.db.selectFrom('devices').select(['id', 'external_id']).orderBy('id').execute(), before);
      deniedFor(await admission.admit(request('devices', lampId, { principal: admin.principal })), /only a device key/i);
      deniedFor(await admission.admit(request('devices', lampId, { principal: { ...lampKey, deviceId: 'dev_gone' } })), /no longer exists/);
    });

    it('an enrollment token registers the device in its organization with its tags, audited, and outweighs a denial', async () => {
      const created = await node.services.admission.createToken(admin, 'acme', { name: 'line 3', tags: ['line3', 'factory'] });
      assert.match(created.token, /^fe_[0-9a-f]{12}_[0-9a-f]{48}$/);
      const stored = await node.store.db.selectFrom('enrollment_tokens').selectAll().where('id', '=', created.id).executeTakeFirstOrThrow();
      assert.ok(!JSON.stringify(stored).includes(created.token.split('_')[2]!), 'only a hash of the secret is stored');

      const id = nextId('enrolled');
      const denial = pendingId(await admission.admit(request('devices', id, { orgHint: 'other' })));
      await admission.deny(systemActor, denial);
      const device = accepted(await admission.admit(request('relay', id, { enrollmentToken: created.token, info: { name: 'Press 7' }, remoteAddress: '203.0.113.9' })), 'token');
      assert.deepEqual([device.orgId, device.externalId, device.name, device.tags], [orgId, id, 'Press 7', ['factory', 'line3']]);
      assert.equal(await node.store.db.selectFrom('pending_devices').select('id').where('external_id', '=', id).executeTakeFirst(), undefined);
      const audit = (await auditOf('admission.enroll')).at(-1)!;
      assert.deepEqual([audit.target_id, audit.ip, JSON.parse(audit.details!).tokenId], [device.id, '203.0.113.9', created.id]);
      assert.equal(accepted(await admission.admit(request('relay', id, { enrollmentToken: created.token })), 'known').id, device.id, 'reconnecting with the token in its URL');
      assert.equal((await admission.listTokens(admin.principal, 'acme', {}, {})).items.find((t) => t.id === created.id)!.uses, 1);
      deniedFor(await admission.admit(request('relay', nextId('forged'), { enrollmentToken: `${created.token.slice(0, -1)}${created.token.endsWith('0') ? '1' : '0'}` })), /not valid/);
      deniedFor(await admission.admit(request('relay', nextId('forged'), { enrollmentToken: 'fe_nonsense' })), /not valid/);
    });

    it('of two devices racing for the last use of a token, exactly one gets in', async () => {
      for (let round = 0; round < 3; round++) {
        const { token, id } = await admission.createToken(admin, 'acme', { name: `last use ${round}`, maxUses: 1 });
        const devicesBefore = await countRows('devices');
        const decisions = await Promise.all([nextId('racer'), nextId('racer')].map((externalId) => admission.admit(request('relay', externalId, { enrollmentToken: token }))));
        assert.deepEqual(decisions.map((d) => d.status).sort(), ['accepted', 'denied']);
        assert.equal(await countRows('devices'), devicesBefore + 1);
        assert.equal((await node.store.db.selectFrom('enrollment_tokens').select('uses').where('id', '=', id).executeTakeFirstOrThrow()).uses, 1);
        deniedFor(await admission.admit(request('relay', nextId('late'), { enrollmentToken: token })), /used up/);
      }
    });

    it('an expired or revoked token admits nobody', async () => {
      const expiring = await admission.createToken(admin, 'acme', { name: 'expiring', expiresAt: new Date(Date.now() + 60_000).toISOString() });
      await node.store.db.updateTable('enrollment_tokens').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', expiring.id).execute();
      deniedFor(await admission.admit(request('relay', nextId('late'), { enrollmentToken: expiring.token })), /expired/);
      await assert.rejects(admission.createToken(admin, 'acme', { name: 'past', expiresAt: new Date(Date.now() - 1000).toISOString() }), { code: 'bad_request' });

      const revoked = await admission.createToken(admin, 'acme', { name: 'revoked' });
      const revocation = await admission.revokeToken(admin, 'acme', revoked.id);
      assert.ok(revocation.revokedAt);
      assert.equal((await auditOf('enrollment_token.revoke')).at(-1)!.target_id, revoked.id);
      const before = await countRows('devices');
      deniedFor(await admission.admit(request('relay', nextId('late'), { enrollmentToken: revoked.token })), /revoked/);
      assert.equal(await countRows('devices'), before);
      assert.deepEqual((await admission.listTokens(admin.principal, 'acme', { revoked: true }, {})).items.map((t) => t.id), [revoked.id]);
      await assert.rejects(admission.revokeToken(admin, 'other', revoked.id), { code: 'not_found' });
    });

    it('refuses ids a device may not have and oversize self-descriptions, storing nothing; only an oversize greeting is left out', async () => {
      const before = [await countRows('devices'), await countRows('pending_devices')];
      for (const externalId of ['', 'a b', 'x'.repeat(129), 'ümlaut', 'a/b']) {
        await assert.rejects(admission.admit(request('devices', externalId, { orgHint: 'acme' })), { code: 'bad_request' }, JSON.stringify(externalId));
      }
      await assert.rejects(admission.admit(request('devices', nextId('big'), { orgHint: 'acme', info: { metadata: { blob: 'x'.repeat(20_000) } } })), { code: 'payload_too_large' });
      assert.deepEqual([await countRows('devices'), await countRows('pending_devices')], before);
      const talkative = pendingId(await admission.admit(request('devices', nextId('talkative'), { orgHint: 'acme', info: { model: 'SPEM-003CEBEU', hello: { status: 'x'.repeat(20_000) } } })));
      const kept = (await admission.listPending(admin.principal, 'acme', {}, {})).items.find((p) => p.id === talkative)!;
      assert.deepEqual(kept.info, { model: 'SPEM-003CEBEU' }, 'an oversize greeting is left out, the rest kept');
    });
  });
}

for (const backend of await backends()) {
  for (const busBackend of await busBackends()) {
    describe(`admission decisions between nodes [${backend.name}, ${busBackend.name}]`, { skip: backend.skip ?? busBackend.skip }, () => {
      let database: Awaited<ReturnType<typeof backend.create>>;
      let buses: [Bus, Bus];
      let first: Node;
      let second: Node;

      before(async () => {
        database = await backend.create();
        buses = await busBackend.nodes();
        first = await startServices(database.url, buses[0]);
        second = await startServices(database.url, buses[1]);
        await first.services.organizations.create(systemActor, { slug: 'acme', name: 'Acme' });
      });
      after(async () => {
        await second?.close();
        await first?.close();
        for (const bus of new Set(buses ?? [])) await bus.close();
        await database?.drop();
      });

      it('a device waiting on one node hears that it was accepted on another, with its device', async () => {
        const waiting = pendingId(await first.services.admission.admit({ endpoint: 'shelly', externalId: `shelly-${busBackend.name}-a`, orgHint: 'acme', info: { model: 'SNPL' } }));
        const ignored = pendingId(await first.services.admission.admit({ endpoint: 'shelly', externalId: `shelly-${busBackend.name}-b`, orgHint: 'acme', info: {} }));
        const decision = decisionOf(first.services.admission, waiting);
        let other = 0;
        first.services.admission.waitForDecision(ignored, () => other++);
        const device = await second.services.admission.accept(systemActor, waiting, { name: 'Plug' });
        const told = await decision;
        assert.equal(told.status, 'accepted');
        assert.deepEqual(told.status === 'accepted' && [told.device.id, told.device.name, told.device.model, told.via], [device.id, 'Plug', 'SNPL', 'manual']);
        assert.equal(other, 0);
      });

      it('and that it was denied, once, and not after it stopped waiting', async () => {
        const waiting = pendingId(await first.services.admission.admit({ endpoint: 'devices', externalId: `device-${busBackend.name}-c`, orgHint: 'acme', info: {} }));
        const cancelled = pendingId(await first.services.admission.admit({ endpoint: 'devices', externalId: `device-${busBackend.name}-d`, orgHint: 'acme', info: {} }));
        const calls: FinalDecision[] = [];
        first.services.admission.waitForDecision(waiting, (d) => calls.push(d));
        let late = 0;
        const cancel = first.services.admission.waitForDecision(cancelled, () => late++);
        cancel();
        await second.services.admission.deny(systemActor, cancelled);
        await second.services.admission.deny(systemActor, waiting);
        await waitFor(() => calls.length > 0);
        await assert.rejects(second.services.admission.deny(systemActor, waiting), { code: 'conflict' });
        assert.deepEqual(calls.map((c) => c.status), ['denied']);
        assert.equal(late, 0);
      });
    });
  }
}

async function waitFor(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
