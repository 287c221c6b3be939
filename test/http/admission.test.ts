import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AdmissionRequest } from '../../src/services/admission.ts';
import { backends } from '../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../helpers/server.ts';

/** The waiting room and enrollment tokens over HTTP: who sees and decides what. */
for (const backend of await backends()) {
  describe(`admission routes [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let orgA: string;
    let orgB: string;
    let adminA: string;
    let operatorA: string;
    let viewerA: string;
    let adminB: string;
    let serial = 0;
    const system = () => server.admin.token;
    const call = (method: string, path: string, token: string, body?: unknown) => request(server.url, method, path, { token, body });
    const arrive = async (extra: Partial<AdmissionRequest> = {}) => {
      const decision = await server.services.admission.admit({ endpoint: 'devices', externalId: `waiting-${++serial}`, info: { model: 'SNSW-001X16EU' }, ...extra });
      assert.equal(decision.status, 'pending', JSON.stringify(decision));
      return (decision as { pendingId: string }).pendingId;
    };
    const rows = async () => server.services.store.db.selectFrom('pending_devices').selectAll().orderBy('id').execute();

    before(async () => {
      server = await startTestServer(backend);
      orgA = server.admin.orgId;
      adminA = (await memberWithRole(server, orgA, 'waiting-admin@example.com', 'admin')).token;
      operatorA = (await memberWithRole(server, orgA, 'waiting-operator@example.com', 'operator')).token;
      viewerA = (await memberWithRole(server, orgA, 'waiting-viewer@example.com', 'viewer')).token;
      orgB = (await call('POST', '/api/orgs', system(), { slug: 'bravo', name: 'Bravo' })).body.id;
      adminB = (await memberWithRole(server, orgB, 'bravo-admin@example.com', 'admin')).token;
    });
    after(async () => {
      await server?.close();
    });

    it("shows a waiting device to its organization's admins only: another organization's admins get 404, viewers and operators 403", async () => {
      const waiting = await arrive({ orgHint: 'default' });
      const list = await call('GET', `/api/orgs/${orgA}/pending-devices?state=pending`, adminA);
      assert.equal(list.status, 200);
      const entry = list.body.items.find((p: { id: string }) => p.id === waiting);
      assert.deepEqual([entry.orgId, entry.state, entry.endpoint, entry.attempts, entry.info.model, entry.keyFingerprint], [orgA, 'pending', 'devices', 1, 'SNSW-001X16EU', null]);
      assert.ok(!(await call('GET', `/api/orgs/${orgB}/pending-devices`, adminB)).body.items.some((p: { id: string }) => p.id === waiting));

      const before = await rows();
      const attempts: Array<[string, string, string, number, unknown?]> = [
        [adminB, 'GET', `/api/orgs/${orgA}/pending-devices`, 404],
        [adminB, 'POST', `/api/orgs/${orgA}/pending-devices/${waiting}/accept`, 404, {}],
        [adminB, 'POST', `/api/orgs/${orgB}/pending-devices/${waiting}/accept`, 404, {}],
        [adminB, 'POST', `/api/orgs/${orgB}/pending-devices/${waiting}/deny`, 404],
        [adminB, 'DELETE', `/api/orgs/${orgB}/pending-devices/${waiting}`, 404],
        [adminB, 'POST', `/api/pending-devices/${waiting}/accept`, 404, { org: 'bravo' }],
        [viewerA, 'GET', `/api/orgs/${orgA}/pending-devices`, 403],
        [operatorA, 'GET', `/api/orgs/${orgA}/pending-devices`, 403],
        [viewerA, 'POST', `/api/orgs/${orgA}/pending-devices/${waiting}/accept`, 403, {}],
        [operatorA, 'POST', `/api/orgs/${orgA}/pending-devices/${waiting}/deny`, 403],
        [operatorA, 'DELETE', `/api/orgs/${orgA}/pending-devices/${waiting}`, 403],
      ];
      for (const [token, method, path, status, body] of attempts) {
        const reply = await call(method, path, token, body);
        assert.equal(reply.status, status, `${method} ${path}: ${reply.status} ${JSON.stringify(reply.body)}`);
      }
      assert.deepEqual(await rows(), before);
    });

    it('an admin accepts a waiting device: it is registered with its external id, audited, and the entry is gone', async () => {
      const waiting = await arrive({ orgHint: 'default', info: { name: 'Hall light', firmware: '1.4.4' } });
      const externalId = (await rows()).find((r) => r.id === waiting)!.external_id;
      const accepted = await call('POST', `/api/orgs/default/pending-devices/${waiting}/accept`, adminA, { tags: ['hall'] });
      assert.equal(accepted.status, 201, JSON.stringify(accepted.body));
      assert.deepEqual([accepted.body.name, accepted.body.externalId, accepted.body.firmware, accepted.body.tags, accepted.body.orgId], ['Hall light', externalId, '1.4.4', ['hall'], orgA]);
      assert.equal((await call('GET', `/api/orgs/${orgA}/devices/${accepted.body.id}`, viewerA)).body.externalId, externalId);
      const audit = await call('GET', `/api/orgs/${orgA}/audit?action=admission.accept`, adminA);
      assert.equal(audit.body.items.at(-1).target.id, accepted.body.id);
      assert.equal((await call('POST', `/api/orgs/${orgA}/pending-devices/${waiting}/accept`, adminA, {})).status, 404);
      assert.ok(!(await rows()).some((r) => r.id === waiting));
    });

    it('an admin denies a waiting device; the denial is listed, and deleting it lets the device ask again', async () => {
      const waiting = await arrive({ orgHint: 'default' });
      const denied = await call('POST', `/api/orgs/${orgA}/pending-devices/${waiting}/deny`, adminA);
      assert.equal(denied.status, 200);
      assert.equal(denied.body.state, 'denied');
      assert.ok(denied.body.decidedAt);
      assert.equal((await call('POST', `/api/orgs/${orgA}/pending-devices/${waiting}/deny`, adminA)).status, 409);
      const listed = await call('GET', `/api/orgs/${orgA}/pending-devices?state=denied`, adminA);
      assert.deepEqual(listed.body.items.map((p: { id: string }) => p.id), [waiting]);
      assert.equal((await call('GET', `/api/orgs/${orgA}/audit?action=admission.deny`, adminA)).body.items.at(-1).target.id, waiting);

      const stillWaiting = await arrive({ orgHint: 'default' });
      assert.equal((await call('DELETE', `/api/orgs/${orgA}/pending-devices/${stillWaiting}`, adminA)).status, 409);
      assert.equal((await call('DELETE', `/api/orgs/${orgA}/pending-devices/${waiting}`, adminA)).status, 204);
      assert.equal((await call('GET', `/api/orgs/${orgA}/pending-devices?state=denied`, adminA)).body.items.length, 0);
    });

    it('lists page by page', async () => {
      for (let i = 0; i < 3; i++) await arrive({ orgHint: 'bravo' });
      const first = await call('GET', `/api/orgs/bravo/pending-devices?limit=2`, adminB);
      assert.equal(first.body.items.length, 2);
      const second = await call('GET', `/api/orgs/bravo/pending-devices?limit=2&cursor=${first.body.nextCursor}`, adminB);
      assert.equal(second.body.items.length, 1);
      assert.equal(second.body.nextCursor, null);
      assert.equal((await call('GET', `/api/orgs/bravo/pending-devices?state=maybe`, adminB)).status, 400);
    });

    it('system admins see devices waiting without an organization, and place them in one', async () => {
      const orphan = await arrive();
      assert.ok((await call('GET', '/api/pending-devices', system())).body.items.some((p: { id: string; orgId: null }) => p.id === orphan && p.orgId === null));
      assert.equal((await call('GET', '/api/pending-devices', adminA)).status, 403);
      assert.ok(!(await call('GET', `/api/orgs/${orgA}/pending-devices`, adminA)).body.items.some((p: { id: string }) => p.id === orphan));
      assert.equal((await call('POST', `/api/orgs/${orgA}/pending-devices/${orphan}/accept`, adminA, {})).status, 404);
      assert.equal((await call('POST', `/api/pending-devices/${orphan}/accept`, system(), {})).status, 400);
      assert.equal((await call('POST', `/api/pending-devices/${orphan}/accept`, system(), { org: 'no-such-org' })).status, 404);
      const placed = await call('POST', `/api/pending-devices/${orphan}/accept`, system(), { org: 'bravo', name: 'Found' });
      assert.equal(placed.status, 201);
      assert.deepEqual([placed.body.orgId, placed.body.name], [orgB, 'Found']);

      const unwanted = await arrive();
      assert.equal((await call('POST', `/api/pending-devices/${unwanted}/deny`, adminA)).status, 404);
      assert.equal((await call('POST', `/api/pending-devices/${unwanted}/deny`, system())).body.state, 'denied');
      assert.equal((await call('DELETE', `/api/pending-devices/${unwanted}`, system())).status, 204);
    });

    it('enrollment tokens: the secret is shown once; admins list and revoke them; others may not', async () => {
      const created = await call('POST', `/api/orgs/${orgA}/enrollment-tokens`, adminA, { name: 'line 3', tags: ['line3'], maxUses: 2 });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.match(created.body.token, new RegExp(`^fe_${created.body.prefix}_[0-9a-f]{48}$`));
      assert.deepEqual([created.body.uses, created.body.maxUses, created.body.tags, created.body.revokedAt], [0, 2, ['line3'], null]);
      const listed = await call('GET', `/api/orgs/${orgA}/enrollment-tokens`, adminA);
      const entry = listed.body.items.find((t: { id: string }) => t.id === created.body.id);
      assert.equal(entry.token, undefined, 'the secret is not shown again');
      assert.ok(!JSON.stringify(listed.body).includes(created.body.token));

      const decision = await server.services.admission.admit({ endpoint: 'shelly', externalId: 'enrolled-over-http', enrollmentToken: created.body.token, info: {} });
      assert.equal(decision.status, 'accepted');
      assert.equal((await call('GET', `/api/orgs/${orgA}/enrollment-tokens`, adminA)).body.items.find((t: { id: string }) => t.id === created.body.id).uses, 1);

      for (const [token, status] of [[viewerA, 403], [operatorA, 403], [adminB, 404]] as const) {
        assert.equal((await call('GET', `/api/orgs/${orgA}/enrollment-tokens`, token)).status, status);
        assert.equal((await call('POST', `/api/orgs/${orgA}/enrollment-tokens`, token, { name: 'mine' })).status, status);
        assert.equal((await call('DELETE', `/api/orgs/${orgA}/enrollment-tokens/${created.body.id}`, token)).status, status);
      }
      assert.equal((await call('DELETE', `/api/orgs/${orgB}/enrollment-tokens/${created.body.id}`, adminB)).status, 404);
      const revoked = await call('DELETE', `/api/orgs/${orgA}/enrollment-tokens/${created.body.id}`, adminA);
      assert.equal(revoked.status, 200);
      assert.ok(revoked.body.revokedAt);
      const refused = await server.services.admission.admit({ endpoint: 'shelly', externalId: 'too-late', enrollmentToken: created.body.token, info: {} });
      assert.equal(refused.status, 'denied');
      const audit = await call('GET', `/api/orgs/${orgA}/audit?action=enrollment_token.create`, adminA);
      assert.equal(audit.body.items.at(-1).target.id, created.body.id);

      assert.equal((await call('POST', `/api/orgs/${orgA}/enrollment-tokens`, adminA, { name: 'x', maxUses: 0 })).status, 400);
      assert.equal((await call('POST', `/api/orgs/${orgA}/enrollment-tokens`, adminA, { name: 'x', expiresAt: '2001-01-01T00:00:00Z' })).status, 400);
      assert.equal((await call('POST', `/api/orgs/${orgA}/enrollment-tokens`, adminA, { name: 'x', tags: ['not a tag'] })).status, 400);
    });

    it('a device shows its external id; only admins change it, and no two devices share one', async () => {
      const device = await call('POST', `/api/orgs/${orgA}/devices`, adminA, { name: 'Relay', externalId: 'shellypro4pm-aabbcc' });
      assert.equal(device.status, 201);
      assert.equal(device.body.externalId, 'shellypro4pm-aabbcc');
      const path = `/api/orgs/${orgA}/devices/${device.body.id}`;
      assert.equal((await call('PATCH', path, operatorA, { externalId: 'stolen' })).status, 403);
      assert.equal((await call('PATCH', path, operatorA, { name: 'Renamed relay' })).status, 200);
      assert.equal((await call('PATCH', path, adminA, { externalId: 'shellypro4pm-ddeeff' })).body.externalId, 'shellypro4pm-ddeeff');
      assert.equal((await call('POST', `/api/orgs/${orgA}/devices`, adminA, { name: 'Twin', externalId: 'shellypro4pm-ddeeff' })).status, 409);
      assert.equal((await call('POST', `/api/orgs/${orgA}/devices`, adminA, { name: 'Bad', externalId: 'has space' })).status, 400);
      assert.equal((await call('PATCH', path, adminA, { externalId: null })).body.externalId, null);
    });
  });
}
