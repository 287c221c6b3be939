import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { systemActor } from '../../src/services/actor.ts';
import { backends } from '../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * rrduino profiles over HTTP: what admins may create and change, what every profile makes in the
 * resource tree, and input that must be refused with nothing stored.
 */

for (const backend of await backends()) {
  describe(`rrduino profiles [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let org: string;
    let otherOrg: string;
    let viewer: string;
    let operator: string;
    let otherAdmin: string;
    const admin = () => server.admin.token;
    const call = (method: string, path: string, token: string, body?: unknown) => request(server.url, method, path, { token, body });
    const profiles = (orgId = org) => `/api/orgs/${orgId}/rrduino-profiles`;
    const create = async (body: Record<string, unknown>, orgId = org) => {
      const reply = await call('POST', profiles(orgId), admin(), body);
      assert.equal(reply.status, 201, JSON.stringify(reply.body));
      return reply.body;
    };
    /** The profile rows, devices and audit events: what a refused request must leave as it was. */
    const snapshot = async () => {
      const db = server.services.store.db;
      return {
        profiles: await db.selectFrom('rrduino_profiles').selectAll().orderBy('client_id').execute(),
        devices: await db.selectFrom('devices').select(['id', 'name']).orderBy('id').execute(),
        resources: await db.selectFrom('resources').select(['path', 'deleted']).orderBy('id').execute(),
        audit: Number((await db.selectFrom('audit_events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n),
      };
    };
    const sequenceRrd = async (path: string) => {
      const resource = await server.services.resources.resolve(systemActor.principal, path);
      const row = await server.services.store.db.selectFrom('sequences').select('rrd').where('resource_id', '=', resource.id).executeTakeFirstOrThrow();
      return JSON.parse(row.rrd!) as { step: number; source: { name: string }; archives: unknown[] };
    };

    before(async () => {
      server = await startTestServer(backend);
      org = server.admin.orgId;
      viewer = (await memberWithRole(server, org, 'rrduino-viewer@example.com', 'viewer')).token;
      operator = (await memberWithRole(server, org, 'rrduino-operator@example.com', 'operator')).token;
      otherOrg = (await call('POST', '/api/orgs', admin(), { slug: 'other', name: 'Other' })).body.id;
      await call('POST', '/api/users', admin(), { email: 'other-admin@example.com', password: 'other-admin-password' });
      await call('POST', `/api/orgs/${otherOrg}/members`, admin(), { email: 'other-admin@example.com', role: 'admin' });
      otherAdmin = (await request(server.url, 'POST', '/api/auth/login', { body: { email: 'other-admin@example.com', password: 'other-admin-password' } })).body.accessToken;
    });
    after(async () => {
      await server?.close();
    });

    it('an admin adds a client: a device named as it, a sequence per data source, the key stored only as its master key', async () => {
      const profile = await create({ clientId: 'fridge', key: 'secret123', rrdArguments: ['--step', '60', 'DS:temperature:GAUGE:120:-50:110', 'DS:humidity:GAUGE:120:0:100'] });
      assert.deepEqual(Object.keys(profile).sort(), ['clientId', 'createdAt', 'deviceId', 'orgId', 'rrdArguments', 'sources', 'updateTemplate', 'updatedAt']);
      assert.deepEqual([profile.clientId, profile.orgId, profile.sources, profile.updateTemplate], ['fridge', org, ['temperature', 'humidity'], null]);
      const device = await call('GET', `/api/orgs/${org}/devices/${profile.deviceId}`, admin());
      assert.equal(device.body.name, 'fridge');
      const row = await server.services.store.db.selectFrom('rrduino_profiles').selectAll().where('client_id', '=', 'fridge').executeTakeFirstOrThrow();
      assert.equal(row.master_key, createHash('sha256').update('secret123').digest('hex'));
      const listed = JSON.stringify((await call('GET', profiles(), admin())).body);
      assert.ok(!listed.includes('secret123') && !listed.includes(row.master_key), 'neither the key nor its hash is ever shown');
      // No RRA given: the default archives, at the step given.
      const temperature = await sequenceRrd('/default/fridge/temperature');
      assert.equal(temperature.step, 60);
      assert.equal(temperature.source.name, 'temperature');
      assert.ok(temperature.archives.length > 1);
      assert.equal((await sequenceRrd('/default/fridge/humidity')).source.name, 'humidity');
      const audit = await call('GET', `/api/orgs/${org}/audit?action=rrduino_profile.create`, admin());
      assert.equal(audit.body.items.length, 1);
      assert.equal(audit.body.items[0].target.id, 'fridge');
    });

    it('links the one device named as the client, or the device given; several of that name need deviceId', async () => {
      const named = (await call('POST', `/api/orgs/${org}/devices`, admin(), { name: 'boiler' })).body.id;
      assert.equal((await create({ clientId: 'boiler', key: 'k' })).deviceId, named);
      const given = (await call('POST', `/api/orgs/${org}/devices`, admin(), { name: 'Shed sensor' })).body.id;
      assert.equal((await create({ clientId: 'shed', key: 'k', deviceId: given })).deviceId, given);
      await call('POST', `/api/orgs/${org}/devices`, admin(), { name: 'twin' });
      await call('POST', `/api/orgs/${org}/devices`, admin(), { name: 'twin' });
      const before = await snapshot();
      const ambiguous = await call('POST', profiles(), admin(), { clientId: 'twin', key: 'k' });
      assert.equal(ambiguous.status, 409);
      assert.deepEqual(await snapshot(), before);
    });

    it("takes rrduino's own profile file", async () => {
      const profile = await create({
        clientId: 'cellar',
        key: 'cellar-key',
        handler: 'RRDuinoHandler',
        handler_options: { path: '/var/lib/rrduino/cellar.rrd', create: ['--step', '300', 'DS:t:GAUGE:600:U:U', 'RRA:MAX:0.5:1:10'], update: 'N:{temperature}' },
      });
      assert.deepEqual([profile.rrdArguments, profile.updateTemplate, profile.sources], [['--step', '300', 'DS:t:GAUGE:600:U:U', 'RRA:MAX:0.5:1:10'], 'N:{temperature}', ['t']]);
      assert.deepEqual((await sequenceRrd('/default/cellar/t')).archives, [{ cf: 'MAX', xff: 0.5, steps: 1, rows: 10 }]);
    });

    it('refuses bad input with nothing stored', async () => {
      const before = await snapshot();
      const bad: Array<[Record<string, unknown>, number]> = [
        [{ clientId: '../etc', key: 'k' }, 400],
        [{ clientId: 'a'.repeat(65), key: 'k' }, 400],
        [{ clientId: 'new', key: '' }, 400],
        [{ clientId: 'new', key: 'k', rrdArguments: ['DS:temperature:GAUGE'] }, 400],
        [{ clientId: 'new', key: 'k', rrdArguments: ['RRA:AVERAGE:2:1:10'] }, 400],
        [{ clientId: 'new', key: 'k', rrdArguments: ['--bogus'] }, 400],
        [{ clientId: 'new', key: 'k', rrdArguments: ['DS:a:GAUGE:60:U:U', 'DS:a:GAUGE:60:U:U'] }, 400],
        [{ clientId: 'new', key: 'k', rrdArguments: ['DS:a:GAUGE:60:U:U'], updateTemplate: 'N:{a}:{b}' }, 400],
        [{ clientId: 'new', key: 'k', rrdArguments: ['DS:a:GAUGE:60:U:U'], updateTemplate: '1234:{a}' }, 400],
        [{ clientId: 'new', key: 'k', rrdArguments: ['DS:a:GAUGE:60:U:U'], updateTemplate: 'N:{a:.1f}' }, 400],
        [{ clientId: 'new', key: 'k', updateTemplate: 'N:{a}' }, 400],
        [{ clientId: 'new', key: 'k', handler: 'OtherHandler' }, 400],
        [{ clientId: 'new', key: 'k', handler_options: { create: ['DS:a:GAUGE:60:U:U'] } }, 400],
        [{ clientId: 'new', key: 'k', rrdArguments: [], handler_options: { path: 'p', create: ['DS:a:GAUGE:60:U:U'], update: 'N:{a}' } }, 400],
        [{ clientId: 'new', key: 'k', deviceId: 'dev_unknown' }, 404],
        [{ clientId: 'fridge', key: 'k' }, 409],
      ];
      for (const [body, status] of bad) {
        const reply = await call('POST', profiles(), admin(), body);
        assert.equal(reply.status, status, `${JSON.stringify(body)}: ${JSON.stringify(reply.body)}`);
      }
      assert.deepEqual(await snapshot(), before);
    });

    it('lists page by page, gets one, and changes the key or the archives: only changed archives are rebuilt', async () => {
      const first = await call('GET', `${profiles()}?limit=2`, admin());
      assert.equal(first.body.items.length, 2);
      const rest = await call('GET', `${profiles()}?limit=500&cursor=${first.body.nextCursor}`, admin());
      const ids = [...first.body.items, ...rest.body.items].map((p: { clientId: string }) => p.clientId);
      assert.deepEqual(ids, ['boiler', 'cellar', 'fridge', 'shed']);
      assert.equal((await call('GET', `${profiles()}/fridge`, admin())).body.sources.length, 2);

      const humidity = await server.services.resources.resolve(systemActor.principal, '/default/fridge/humidity');
      await server.services.series.ingest([{ sequenceId: humidity.id, t: Date.now(), value: 40 }]);
      const stateBefore = await server.services.store.db.selectFrom('sequences').select('rrd_state').where('resource_id', '=', humidity.id).executeTakeFirstOrThrow();
      assert.notEqual(stateBefore.rrd_state, null);
      const patched = await call('PATCH', `${profiles()}/fridge`, admin(), {
        key: 'new-secret',
        rrdArguments: ['--step', '60', 'DS:temperature:GAUGE:300:-50:110', 'DS:humidity:GAUGE:120:0:100', 'DS:door:GAUGE:120:0:1'],
      });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      assert.deepEqual(patched.body.sources, ['temperature', 'humidity', 'door']);
      const row = await server.services.store.db.selectFrom('rrduino_profiles').select('master_key').where('client_id', '=', 'fridge').executeTakeFirstOrThrow();
      assert.equal(row.master_key, createHash('sha256').update('new-secret').digest('hex'));
      assert.equal((await sequenceRrd('/default/fridge/door')).source.name, 'door');
      assert.equal(((await sequenceRrd('/default/fridge/temperature')).source as unknown as { heartbeat: number }).heartbeat, 300);
      const stateAfter = await server.services.store.db.selectFrom('sequences').select('rrd_state').where('resource_id', '=', humidity.id).executeTakeFirstOrThrow();
      assert.equal(stateAfter.rrd_state, stateBefore.rrd_state, 'humidity kept its archives');
      assert.equal((await call('PATCH', `${profiles()}/fridge`, admin(), {})).status, 400);
      assert.equal((await call('PATCH', `${profiles()}/fridge`, admin(), { rrdArguments: ['DS:x'] })).status, 400);
      assert.equal((await call('PATCH', `${profiles()}/nobody`, admin(), { key: 'k' })).status, 404);
    });

    it('viewers and operators may not read or change profiles (403), and nothing changes', async () => {
      const before = await snapshot();
      for (const token of [viewer, operator]) {
        for (const [method, path, body] of [
          ['GET', profiles()],
          ['POST', profiles(), { clientId: 'by-member', key: 'k' }],
          ['GET', `${profiles()}/fridge`],
          ['PATCH', `${profiles()}/fridge`, { key: 'taken-over' }],
          ['DELETE', `${profiles()}/fridge`],
        ] as const) {
          const reply = await call(method, path, token, body);
          assert.equal(reply.status, 403, `${method} ${path}: ${reply.status}`);
        }
      }
      assert.deepEqual(await snapshot(), before);
    });

    it("another organization's admin finds none of them; client ids are unique across organizations", async () => {
      const before = await snapshot();
      assert.equal((await call('GET', `${profiles()}/fridge`, otherAdmin)).status, 404);
      assert.equal((await call('DELETE', `${profiles()}/fridge`, otherAdmin)).status, 404);
      assert.equal((await call('GET', `${profiles(otherOrg)}/fridge`, otherAdmin)).status, 404);
      assert.equal((await call('DELETE', `${profiles(otherOrg)}/fridge`, otherAdmin)).status, 404);
      assert.deepEqual((await call('GET', profiles(otherOrg), otherAdmin)).body.items, []);
      const shed = (await call('GET', `${profiles()}/shed`, admin())).body.deviceId;
      assert.equal((await call('POST', profiles(otherOrg), otherAdmin, { clientId: 'stolen', key: 'k', deviceId: shed })).status, 404, "another organization's device");
      assert.equal((await call('POST', profiles(otherOrg), otherAdmin, { clientId: 'fridge', key: 'k' })).status, 409);
      assert.deepEqual(await snapshot(), before);
      assert.equal((await call('POST', profiles(otherOrg), otherAdmin, { clientId: 'other-fridge', key: 'k' })).status, 201);
    });

    it('removing a client keeps its device and values', async () => {
      const profile = (await call('GET', `${profiles()}/fridge`, admin())).body;
      assert.equal((await call('DELETE', `${profiles()}/fridge`, admin())).status, 204);
      assert.equal((await call('GET', `${profiles()}/fridge`, admin())).status, 404);
      assert.equal((await call('DELETE', `${profiles()}/fridge`, admin())).status, 404);
      assert.equal((await call('GET', `/api/orgs/${org}/devices/${profile.deviceId}`, admin())).status, 200);
      const last = await call('GET', '/api/series/last?path=/default/fridge/humidity', admin());
      assert.equal(last.body.last.value, 40);
      // Deleting the device takes its profile with it.
      await create({ clientId: 'fridge', key: 'again', deviceId: profile.deviceId });
      assert.equal((await call('DELETE', `/api/orgs/${org}/devices/${profile.deviceId}`, admin())).status, 204);
      assert.equal((await call('GET', `${profiles()}/fridge`, admin())).status, 404);
    });
  });
}
