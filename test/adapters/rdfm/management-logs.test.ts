import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RdfmIds } from '../../../src/adapters/rdfm/ids.ts';
import { systemActor } from '../../../src/services/actor.ts';
import { backends } from '../../helpers/backends.ts';
import { memberWithRole, startTestServer, type TestServer } from '../../helpers/server.ts';
import { otherOrganization, rdfmClient, registeredDevice, rfc822Shape } from './management-helpers.ts';
import type { RdfmDevice } from './simulator.ts';

const logKeys = ['created', 'device_id', 'device_timestamp', 'entry', 'id', 'name'];
const badIds = ['abc', '99999999999', '0', '-1', '1.5', '%2e%2e%2f1'];

/** RDFM's log routes (rdfm.md §9) over the logs RDFM devices send, as a management client reads and deletes them. */
for (const backend of await backends()) {
  describe(`RDFM management: logs [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let admin: ReturnType<typeof rdfmClient>;
    let board: { device: RdfmDevice; number: number; fleetdId: string };
    let other: { device: RdfmDevice; number: number; fleetdId: string };
    let group: number;
    let emptyGroup: number;

    const send = async (device: RdfmDevice, batch: Array<[string, string, string]>) => {
      const reply = await device.post('/api/v1/logs', { batch: batch.map(([device_timestamp, name, entry]) => ({ device_timestamp, name, entry })) });
      assert.equal(reply.status, 200);
    };
    const entriesOf = (reply: { body: any[] }) => reply.body.map((log) => log.entry);

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off' });
      admin = rdfmClient(server, server.admin.token);
      board = await registeredDevice(server, 'dd:00:00:00:00:01');
      other = await registeredDevice(server, 'dd:00:00:00:00:02');
      const ids = new RdfmIds(server.services.store.db);
      const boards = await server.services.groups.create(systemActor, server.admin.orgId, { name: 'boards' });
      await server.services.groups.addMembers(systemActor, server.admin.orgId, boards.id, [board.fleetdId]);
      group = await ids.number('group', boards.id);
      emptyGroup = await ids.number('group', (await server.services.groups.create(systemActor, server.admin.orgId, { name: 'empty' })).id);
      await send(board.device, [
        ['Wed, 02 Oct 2002 15:00:00 -0000', 'CPU', 'cpu-15'],
        ['Wed, 02 Oct 2002 16:00:00 -0000', 'MEM', 'mem-16'],
        ['Wed, 02 Oct 2002 17:00:00 GMT', 'CPU', 'cpu-17'],
        ['Wed, 02 Oct 2002 19:00:00 +0200', 'CPU', 'cpu-17b'],
      ]);
      await send(other.device, [['Wed, 02 Oct 2002 15:30:00 -0000', 'CPU', 'other-cpu']]);
    });
    after(async () => {
      await server?.close();
    });

    it("a device's logs, newest first (by the device's clock), in RDFM's shape", async () => {
      const reply = await admin('GET', `/api/v1/logs/device/${board.number}`);
      assert.equal(reply.status, 200);
      assert.equal(reply.body.length, 4);
      assert.deepEqual(entriesOf(reply).slice(2), ['mem-16', 'cpu-15']);
      for (const log of reply.body) {
        assert.deepEqual(Object.keys(log).sort(), logKeys);
        assert.ok(Number.isSafeInteger(log.id) && log.id > 0);
        assert.equal(log.device_id, board.number);
        assert.match(log.created, rfc822Shape);
        assert.match(log.device_timestamp, rfc822Shape);
      }
      assert.equal(reply.body.at(-1).device_timestamp, 'Wed, 02 Oct 2002 15:00:00 GMT');
      assert.equal(reply.body.at(-1).name, 'CPU');
    });

    it('filters: since and to (RFC 822, inclusive), name', async () => {
      const window = await admin('GET', `/api/v1/logs/device/${board.number}?since=${encodeURIComponent('Wed, 02 Oct 2002 16:00:00 GMT')}&to=${encodeURIComponent('Wed, 02 Oct 2002 17:00:00 +0000')}`);
      assert.equal(window.status, 200);
      assert.deepEqual(entriesOf(window).sort(), ['cpu-17', 'cpu-17b', 'mem-16']);
      const cpu = await admin('GET', `/api/v1/logs/device/${board.number}?name=CPU&since=${encodeURIComponent('02 Oct 2002 15:30:00 GMT')}`);
      assert.deepEqual(entriesOf(cpu).sort(), ['cpu-17', 'cpu-17b']);
      assert.deepEqual((await admin('GET', `/api/v1/logs/device/${board.number}?name=DISK`)).body, []);
    });

    it("a group's logs are those of its devices; an empty group has none", async () => {
      const reply = await admin('GET', `/api/v1/logs/group/${group}`);
      assert.equal(reply.status, 200);
      assert.deepEqual(entriesOf(reply).sort(), ['cpu-15', 'cpu-17', 'cpu-17b', 'mem-16']);
      assert.deepEqual(await admin('GET', `/api/v1/logs/group/${emptyGroup}`), { status: 200, body: [] });
    });

    it('one log by its id', async () => {
      const [newest] = (await admin('GET', `/api/v1/logs/device/${other.number}`)).body;
      assert.deepEqual(await admin('GET', `/api/v1/logs/${newest.id}`), { status: 200, body: newest });
    });

    it('malformed parameters are 400 {"error"}; ids that name nothing are 404 {"error"}', async () => {
      for (const query of ['since=yesterday', 'to=2002-10-02T15:00:00Z', 'since=Wed,%2032%20Oct%202002%2015:00:00%20GMT', 'since=a&since=b', `name=${'n'.repeat(201)}`]) {
        for (const method of ['GET', 'DELETE']) {
          for (const path of [`/api/v1/logs/device/${board.number}`, `/api/v1/logs/group/${group}`]) {
            const reply = await admin(method, `${path}?${query}`);
            assert.equal(reply.status, 400, `${method} ${path}?${query}: ${JSON.stringify(reply.body)}`);
            assert.equal(typeof reply.body.error, 'string');
          }
        }
      }
      for (const id of ['424242', ...badIds]) {
        for (const method of ['GET', 'DELETE']) {
          for (const path of [`/api/v1/logs/device/${id}`, `/api/v1/logs/group/${id}`, `/api/v1/logs/${id}`]) {
            const reply = await admin(method, path);
            assert.equal(reply.status, 404, `${method} ${path}: ${JSON.stringify(reply.body)}`);
            assert.equal(typeof reply.body.error, 'string');
          }
        }
      }
      assert.equal((await admin('GET', `/api/v1/logs/device/${board.number}`)).body.length, 4, 'nothing deleted');
    });

    it('viewers read logs but delete none (403)', async () => {
      const viewer = rdfmClient(server, (await memberWithRole(server, server.admin.orgId, 'viewer@example.com', 'viewer')).token);
      assert.equal((await viewer('GET', `/api/v1/logs/device/${board.number}`)).body.length, 4);
      assert.equal((await viewer('GET', `/api/v1/logs/group/${group}`)).status, 200);
      const [log] = (await viewer('GET', `/api/v1/logs/device/${board.number}`)).body;
      for (const path of [`/api/v1/logs/device/${board.number}`, `/api/v1/logs/group/${group}`, `/api/v1/logs/${log.id}`]) {
        const reply = await viewer('DELETE', path);
        assert.equal(reply.status, 403, path);
        assert.equal(typeof reply.body.error, 'string');
      }
      assert.equal((await admin('GET', `/api/v1/logs/device/${board.number}`)).body.length, 4);
    });

    it("another organization's API key finds none of these logs, devices or groups (404)", async () => {
      const stranger = rdfmClient(server, (await otherOrganization(server, 'other-logs')).key);
      const [log] = (await admin('GET', `/api/v1/logs/device/${board.number}`)).body;
      for (const method of ['GET', 'DELETE']) {
        for (const path of [`/api/v1/logs/device/${board.number}`, `/api/v1/logs/group/${group}`, `/api/v1/logs/${log.id}`]) {
          const reply = await stranger(method, path);
          assert.equal(reply.status, 404, `${method} ${path}`);
          assert.equal(typeof reply.body.error, 'string');
        }
      }
      assert.equal((await admin('GET', `/api/v1/logs/device/${board.number}`)).body.length, 4);
    });

    it('without a token: 401 {"error"}', async () => {
      const anonymous = rdfmClient(server, undefined);
      for (const method of ['GET', 'DELETE']) {
        for (const path of [`/api/v1/logs/device/${board.number}`, `/api/v1/logs/group/${group}`, '/api/v1/logs/1']) {
          const reply = await anonymous(method, path);
          assert.equal(reply.status, 401, `${method} ${path}`);
          assert.equal(typeof reply.body.error, 'string');
        }
      }
    });

    it('deleting: one log, then a device\'s by name, then a group\'s by time; other devices keep theirs', async () => {
      const [newest] = (await admin('GET', `/api/v1/logs/device/${board.number}`)).body;
      assert.deepEqual(await admin('DELETE', `/api/v1/logs/${newest.id}`), { status: 200, body: {} });
      assert.equal((await admin('GET', `/api/v1/logs/${newest.id}`)).status, 404);
      assert.equal((await admin('DELETE', `/api/v1/logs/${newest.id}`)).status, 404);

      assert.deepEqual(await admin('DELETE', `/api/v1/logs/device/${board.number}?name=MEM`), { status: 200, body: {} });
      assert.deepEqual(entriesOf(await admin('GET', `/api/v1/logs/device/${board.number}`)).sort(), ['cpu-15', 'cpu-17', 'cpu-17b'].filter((e) => e !== newest.entry));

      assert.deepEqual(await admin('DELETE', `/api/v1/logs/group/${group}?to=${encodeURIComponent('Wed, 02 Oct 2002 15:00:00 GMT')}`), { status: 200, body: {} });
      assert.ok(!entriesOf(await admin('GET', `/api/v1/logs/device/${board.number}`)).includes('cpu-15'));
      assert.deepEqual(await admin('DELETE', `/api/v1/logs/group/${group}`), { status: 200, body: {} });
      assert.deepEqual((await admin('GET', `/api/v1/logs/device/${board.number}`)).body, []);
      assert.deepEqual(entriesOf(await admin('GET', `/api/v1/logs/device/${other.number}`)), ['other-cpu']);
    });
  });
}
