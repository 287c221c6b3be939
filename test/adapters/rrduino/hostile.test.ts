import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { systemActor } from '../../../src/services/actor.ts';
import { backends } from '../../helpers/backends.ts';
import { startTestServer, type TestServer } from '../../helpers/server.ts';
import { TestClient } from './client.ts';
import { fridgeArchives, valuesOf, waitForValues } from './helpers.ts';

/**
 * What a hostile or broken client can do to the rrduino listener: every such connection is closed
 * without a word (the protocol has none), stores nothing, and a well-behaved client writing all the
 * while is never disturbed.
 */
const idleTimeoutSeconds = 1;
const mac = (text: string) => text.slice(text.lastIndexOf(' ') + 1, -1);
const withMac = (line: string, newMac: string) => `${line.slice(0, line.lastIndexOf(' '))} ${newMac}\n`;

for (const backend of await backends()) {
  describe(`rrduino hostile input [${backend.name}]`, { skip: backend.skip }, () => {
    let server: TestServer;
    let port: number;
    const clients: TestClient[] = [];
    let witness: { client: TestClient; sent: number; timer: NodeJS.Timeout };

    const connect = async () => {
      const client = await TestClient.connect(port);
      clients.push(client);
      return client;
    };
    const fridge = async () => {
      const client = await connect();
      await client.hello('fridge', 'secret123');
      return client;
    };
    const storedOfFridge = async () => [...(await valuesOf(server, '/default/fridge/temperature')), ...(await valuesOf(server, '/default/fridge/humidity'))];

    /** Runs the attack; its connection must close soon, without a byte back beyond a nonce, and the fridge's values stay as they were. */
    async function refused(attack: (client: TestClient) => Promise<void> | void, options: { hello?: boolean; within?: number; client?: TestClient } = {}): Promise<void> {
      const stored = await storedOfFridge();
      const client = options.client ?? (options.hello === false ? await connect() : await fridge());
      await attack(client);
      assert.equal(await client.closedWithin(options.within ?? 3000), true, 'the connection is closed');
      assert.equal(client.unread.length, 0, 'nothing is sent back');
      assert.deepEqual(await storedOfFridge(), stored, 'nothing is stored');
    }

    before(async () => {
      server = await startTestServer(backend, { rrduinoIdleTimeout: String(idleTimeoutSeconds) });
      port = server.server.rrduinoPort!;
      await server.services.rrduinoProfiles.create(systemActor, 'default', { clientId: 'fridge', key: 'secret123', rrdArguments: fridgeArchives });
      await server.services.rrduinoProfiles.create(systemActor, 'default', { clientId: 'witness', key: 'witness-key' });
      await server.services.rrduinoProfiles.create(systemActor, 'default', { clientId: 'open-keys', key: 'open-key' });
      // The witness writes a reading every 200 ms while the attacks run, well within its idle timeout.
      const client = await TestClient.connect(port);
      await client.hello('witness', 'witness-key');
      witness = { client, sent: 0, timer: setInterval(() => client.update([['count', String(++witness.sent)]]), 200) };
      // Its first reading makes its sequence: once that is there, the tree no longer changes unless an attack gets through.
      const made = () => server.services.store.db.selectFrom('resources').select('id').where('path', '=', '/witness/count').executeTakeFirst();
      while (!(await made())) await sleep(50);
    });
    after(async () => {
      clearInterval(witness?.timer);
      witness?.client.end();
      for (const client of clients) client.end();
      await server?.close();
    });

    it('a replayed line is refused, in its session and in a new one', async () => {
      const client = await fridge();
      const line = client.line([['temperature', '1'], ['humidity', '10']]);
      client.write(line);
      await waitForValues(server, '/default/fridge/temperature', [1]);
      await refused(() => client.write(line), { client });
      // Captured on the wire and played into a session of its own: the nonce differs, so does the key.
      await refused((other) => other.write(line));
      await waitForValues(server, '/default/fridge/temperature', [1]);
    });

    it('a tampered value, key or MAC is refused, and so is a MAC of the wrong length', async () => {
      await refused((client) => client.write(client.line([['temperature', '21.50'], ['humidity', '40']]).replace('21.50', '99.50')));
      await refused((client) => client.write(client.line([['temperature', '21.50'], ['humidity', '40']]).replace('humidity', 'humidiTy')));
      await refused((client) => client.write(withMac(client.line([['temperature', '2'], ['humidity', '3']]), randomBytes(32).toString('hex'))));
      await refused((client) => {
        const line = client.line([['temperature', '2'], ['humidity', '3']]);
        client.write(withMac(line, mac(line).slice(0, 63)));
      });
      await refused((client) => {
        const line = client.line([['temperature', '2'], ['humidity', '3']]);
        client.write(withMac(line, `${mac(line)}0`));
      });
      await refused((client) => client.write(client.line([['temperature', '2'], ['humidity', '3']]).replace(/ ([0-9a-f]{64})\n$/, '\n')));
    });

    it('an upper-case MAC is taken (compared as bytes); the key then ratchets as usual', async () => {
      const client = await fridge();
      const line = client.line([['temperature', '3'], ['humidity', '30']]);
      client.write(withMac(line, mac(line).toUpperCase()));
      client.update([['temperature', '4'], ['humidity', '31']]);
      await waitForValues(server, '/default/fridge/temperature', [1, 3, 4]);
      assert.equal(client.isClosed, false);
    });

    it('an update before the hello, an unknown client, or a client id outside the safe charset is refused, with no nonce', async () => {
      await refused((client) => client.write(`u temperature 1 humidity 2 ${'0'.repeat(64)}\n`), { hello: false });
      for (const hello of ['h nobody\n', 'h ../fridge\n', 'h fridge/x\n', 'h \n', `h ${'a'.repeat(65)}\n`, 'h fri dge\n', 'h fridge\u00e9\n']) {
        await refused((client) => client.write(Buffer.from(hello, 'latin1')), { hello: false });
      }
    });

    it('a line without a space, an empty line, or an unknown type is refused, before and after the hello', async () => {
      for (const hello of [true, false]) {
        for (const line of ['h\n', '\n', 'x fridge\n', 'U temperature 1\n']) await refused((client) => client.write(line), { hello });
      }
    });

    it('a value that is not a number, a missing reading, or an empty key is refused, and none of the line is stored', async () => {
      for (const value of ['abc', '0x10', 'Infinity', '1e999', '1,5', '']) {
        await refused((client) => client.write(client.line([['temperature', value], ['humidity', '50']])));
      }
      await refused((client) => client.write(client.line([['temperature', '5']])));
      await refused((client) => client.write(client.line([['temperature', '5'], ['', 'x'], ['humidity', '5']])));
    });

    it('a key of a profile without data sources cannot reach outside its folder', async () => {
      const before = await server.services.store.db.selectFrom('resources').select('path').orderBy('path').execute();
      for (const key of ['..', '../fridge', '.hidden', 'a/b']) {
        const client = await connect();
        await client.hello('open-keys', 'open-key');
        client.update([[key, '1']]);
        assert.equal(await client.closedWithin(3000), true, key);
      }
      assert.deepEqual(await server.services.store.db.selectFrom('resources').select('path').orderBy('path').execute(), before);
    });

    it('a connection silent for the idle timeout is closed, before and after its hello', async () => {
      for (const hello of [false, true]) {
        const client = hello ? await fridge() : await connect();
        assert.equal(await client.closedWithin(idleTimeoutSeconds * 1000 - 300), false);
        assert.equal(await client.closedWithin(2000), true);
      }
    });

    it('an unfinished line is closed after the idle timeout even while bytes of it trickle in, and never stored', async () => {
      await refused(
        async (client) => {
          const line = client.line([['temperature', '6'], ['humidity', '60']]);
          const started = Date.now();
          for (const char of line.slice(0, 40)) {
            if (client.isClosed) break;
            client.write(char);
            await sleep(100);
          }
          assert.ok(Date.now() - started >= idleTimeoutSeconds * 1000 - 100, 'open while within the timeout');
        },
        { within: 2000 },
      );
    });

    it('a line over 4096 bytes is refused as soon as it is known, before the timeout', async () => {
      await refused((client) => client.write('u temperature '.padEnd(5000, '1')), { within: 500 });
      await refused((client) => client.write(`u temperature ${'1'.repeat(4100)} humidity 1 ${'0'.repeat(64)}\n`), { within: 500 });
    });

    it('binary garbage is refused, before and after the hello', async () => {
      for (const hello of [false, true]) {
        await refused((client) => client.write(Buffer.concat([randomBytes(1000), Buffer.from('\n'), randomBytes(1000), Buffer.from('\n')])), { hello, within: 500 });
      }
    });

    it('a client disconnecting within a line stores nothing of it', async () => {
      const stored = await storedOfFridge();
      const client = await fridge();
      const line = client.line([['temperature', '7'], ['humidity', '70']]);
      client.socket.end(line.slice(0, -1));
      await client.closedWithin(2000);
      await sleep(200);
      assert.deepEqual(await storedOfFridge(), stored);
    });

    it('a slow client does not hold up another: the fast one is served while the slow one sits in an unfinished line', async () => {
      const slow = await fridge();
      slow.write('u temperature 8 humid');
      const fast = await fridge();
      const sentAt = Date.now();
      fast.update([['temperature', '9'], ['humidity', '90']]);
      fast.update([['temperature', '10'], ['humidity', '91']]);
      await waitForValues(server, '/default/fridge/humidity', [10, 30, 31, 90, 91]);
      assert.ok(Date.now() - sentAt < idleTimeoutSeconds * 1000, `served in ${Date.now() - sentAt} ms, while the slow one waits`);
      assert.equal(slow.isClosed, false);
      assert.equal(await slow.closedWithin(2000), true);
    });

    it('the witness, writing all along, was never disturbed and lost nothing', async () => {
      clearInterval(witness.timer);
      assert.equal(witness.client.isClosed, false);
      await waitForValues(
        server,
        '/default/witness/count',
        Array.from({ length: witness.sent }, (_, i) => i + 1),
      );
      assert.ok(witness.sent > 20, `the witness sent ${witness.sent} lines`);
    });
  });
}
