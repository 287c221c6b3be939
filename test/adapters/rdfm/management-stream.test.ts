import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { systemActor } from '../../../src/services/actor.ts';
import { backends } from '../../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { Arrivals } from '../../helpers/waiting.ts';
import { RdfmDevice } from './simulator.ts';
import { admitRdfmDevice, connectRdfmDevice, otherOrganization, rdfmCall } from './remote-fixture.ts';

/** A client of RDFM's SSE stream, keeping the events (and comments) it has read. */
class EventStreamClient {
  readonly events: { event: string; data: any }[] = [];
  comments = 0;
  readonly #arrivals = new Arrivals();
  readonly #abort = new AbortController();
  #buffer = '';

  private constructor(readonly response: Response) {}

  static async open(url: string, token: string): Promise<EventStreamClient> {
    const abort = new AbortController();
    const response = await fetch(url, { headers: { authorization: `Bearer token=${token}` }, signal: abort.signal });
    const client = new EventStreamClient(response);
    client.#abort.signal.addEventListener('abort', () => abort.abort());
    void client.#read();
    return client;
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.response.body as unknown as AsyncIterable<Uint8Array>) {
        this.#buffer += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = this.#buffer.indexOf('\n\n')) >= 0) {
          const block = this.#buffer.slice(0, end);
          this.#buffer = this.#buffer.slice(end + 2);
          if (block.startsWith(':')) this.comments++;
          else {
            const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
            const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null');
            this.events.push({ event, data });
          }
          this.#arrivals.arrived();
        }
      }
    } catch {
      // Aborted by close().
    }
  }

  until(condition: () => boolean, what: string): Promise<void> {
    return this.#arrivals.until(condition, what);
  }

  has(event: string, data: unknown): boolean {
    return this.events.some((e) => e.event === event && JSON.stringify(e.data) === JSON.stringify(data));
  }

  close(): void {
    this.#abort.abort();
  }
}

/** RDFM's `GET /api/stream` for the organization's devices, from a simulated RDFM device's life. */
for (const backend of await backends()) {
  describe(`RDFM management: event stream [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let other: { orgId: string; key: string };
    const clients: EventStreamClient[] = [];
    const mac = '02:00:00:00:00:21';
    const foreignMac = '02:00:00:00:00:22';
    const open = async (token: string) => {
      const client = await EventStreamClient.open(`${server.url}/api/stream`, token);
      clients.push(client);
      return client;
    };

    before(async () => {
      server = await startTestServer(backend, { messageLog: 'off' });
      other = await otherOrganization(server, 'other');
    });
    after(async () => {
      for (const client of clients) client.close();
      await server?.close();
    });

    it('streams connect, update and disconnect of the organization’s device, nothing of another organization’s', async () => {
      const viewer = await memberWithRole(server, server.admin.orgId, 'viewer@example.com', 'viewer');
      const stream = await open(viewer.token);
      assert.equal(stream.response.status, 200);
      assert.match(stream.response.headers.get('content-type') ?? '', /^text\/event-stream/);
      const foreignStream = await open(other.key);

      const { device, deviceId } = await admitRdfmDevice(server, mac);
      const socket = await connectRdfmDevice(device, { shell: false, action: false, 'update-progress': true });
      await stream.until(() => stream.has('connect', { device: mac }), 'connect');

      const org = server.admin.orgId;
      const pkg = await server.services.packages.upload(systemActor, org, { version: 'v2', deviceType: 'board-a' }, Readable.from([Buffer.from('v2')]));
      const admin = (method: string, path: string, body?: unknown) => request(server.url, method, path, { token: server.admin.token, body });
      const group = await admin('POST', `/api/orgs/${org}/groups`, { name: 'boards' });
      await admin('POST', `/api/orgs/${org}/groups/${group.body.id}/members`, { deviceIds: [deviceId] });
      await admin('PUT', `/api/orgs/${org}/groups/${group.body.id}/update-policy`, { policy: 'exact_match', targetVersion: 'v2' });
      await admin('PUT', `/api/orgs/${org}/groups/${group.body.id}/packages`, { packageIds: [pkg.id] });
      assert.equal((await device.updateCheck()).status, 200);
      socket.send({ method: 'update_progress', progress: 40 });
      await stream.until(() => stream.has('update', { device: mac, progress: 40, version: 'v2' }), 'update');

      socket.close();
      await stream.until(() => stream.has('disconnect', { device: mac }), 'disconnect');
      assert.deepEqual(
        stream.events.map((e) => e.event),
        ['connect', 'update', 'disconnect'],
      );

      // Another organization's device: its own stream sees it, this one does not.
      const foreign = new RdfmDevice(server.url, foreignMac);
      assert.equal((await foreign.auth()).status, 401);
      const pending = await admin('GET', '/api/pending-devices');
      const entry = pending.body.items.find((p: any) => p.externalId === foreignMac);
      assert.equal((await admin('POST', `/api/pending-devices/${entry.id}/accept`, { org: 'other' })).status, 201);
      assert.equal((await foreign.auth()).status, 200);
      const foreignSocket = await connectRdfmDevice(foreign, { shell: false });
      await foreignStream.until(() => foreignStream.has('connect', { device: foreignMac }), 'the other organization’s connect');
      foreignSocket.close();
      await foreignStream.until(() => foreignStream.has('disconnect', { device: foreignMac }), 'the other organization’s disconnect');
      assert.ok(!stream.events.some((e) => e.data.device === foreignMac), 'nothing of another organization');
      assert.ok(!foreignStream.events.some((e) => e.data.device === mac), 'nothing of this organization in the other');
    });

    it('starts from now: a new stream replays nothing', async () => {
      const late = await open(server.admin.token);
      await late.until(() => late.comments > 0, 'the opening comment');
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.deepEqual(late.events, []);
    });

    it('refuses a missing or bad token with 401 and RDFM’s error body', async () => {
      const anonymous = await rdfmCall(server, undefined, 'GET', '/api/stream');
      assert.equal(anonymous.status, 401);
      assert.equal(typeof anonymous.body.error, 'string');
      const bad = await rdfmCall(server, 'nonsense', 'GET', '/api/stream');
      assert.equal(bad.status, 401);
    });

    it('ends open streams when the server closes', async () => {
      const lingering = await open(server.admin.token);
      await lingering.until(() => lingering.comments > 0, 'the opening comment');
      const closed = server.close();
      await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the server did not close')), 10_000))]);
      server = undefined as unknown as TestServer;
    });
  });
}
