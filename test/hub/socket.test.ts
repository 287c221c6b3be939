import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { WebSocketEndpoint } from '../../src/http/websocket.ts';
import type { FleetSocket } from '../../src/hub/socket.ts';
import { closeOf, connect, eventually, metricValue, startWebSockets, type WsHarness } from './websocket-harness.ts';

describe('FleetSocket', () => {
  let ws: WsHarness;
  /** What the next connection's endpoint does with its socket. */
  let serve: (socket: FleetSocket) => void = () => {};
  const serverClosed: Array<{ socket: FleetSocket; code: number; reason: string }> = [];
  const endpoint: WebSocketEndpoint = {
    name: 'test',
    kind: 'client',
    match: (pathname) => pathname === '/test',
    accept(socket) {
      socket.onClose((code, reason) => serverClosed.push({ socket, code, reason }));
      serve(socket);
    },
  };
  const open = async (handler: (socket: FleetSocket) => void) => {
    let accepted!: FleetSocket;
    serve = (socket) => {
      accepted = socket;
      handler(socket);
    };
    const client = await connect(`${ws.url}/test`);
    return { client, socket: accepted };
  };
  const serverCloseOf = (socket: FleetSocket) => new Promise<{ code: number; reason: string }>((resolve) => socket.onClose((code, reason) => resolve({ code, reason })));

  before(async () => {
    ws = await startWebSockets([endpoint], { limits: { maxFrameBytes: 1024, messagesPerMinute: 20 } });
  });
  after(async () => {
    await ws?.close();
  });

  it('hands text frames to the handler one at a time, in order, awaiting each', async () => {
    const handled: string[] = [];
    let running = 0;
    let most = 0;
    const { client, socket } = await open((s) =>
      s.onText(async (text) => {
        running += 1;
        most = Math.max(most, running);
        await sleep(text.endsWith('0') ? 20 : 1);
        handled.push(text);
        running -= 1;
      }),
    );
    const sent = Array.from({ length: 15 }, (_, i) => `message ${i}`);
    for (const text of sent) client.send(text);
    await eventually(() => handled.length === sent.length, 5000, 'every message to be handled');
    assert.deepEqual(handled, sent);
    assert.equal(most, 1, 'never two handlers at once');
    assert.equal(await metricValue(ws.registry, 'fleetd_hub_messages_total', { endpoint: 'test', direction: 'in' }), 15);
    assert.ok(socket.open);
    client.close();
    await closeOf(client);
  });

  it('keeps frames that arrive before a text handler is set', async () => {
    const { client, socket } = await open(() => {});
    client.send('early');
    await sleep(50);
    const got = new Promise((resolve) => socket.onText(resolve));
    assert.equal(await got, 'early');
    client.close();
  });

  it('sends text and binary frames, and counts them', async () => {
    const outBefore = await metricValue(ws.registry, 'fleetd_hub_messages_total', { endpoint: 'test', direction: 'out' });
    const { client, socket } = await open(() => {});
    const received: Array<{ data: string; isBinary: boolean }> = [];
    client.on('message', (data, isBinary) => received.push({ data: data.toString(), isBinary }));
    assert.equal(socket.send('text'), true);
    assert.equal(socket.sendBinary(Buffer.from('bytes')), true);
    await eventually(() => received.length === 2);
    assert.deepEqual(received, [
      { data: 'text', isBinary: false },
      { data: 'bytes', isBinary: true },
    ]);
    assert.equal(await metricValue(ws.registry, 'fleetd_hub_messages_total', { endpoint: 'test', direction: 'out' }), outBefore + 2);
    client.close();
    await closeOf(client);
    assert.equal(socket.open, false);
    assert.equal(socket.send('too late'), false, 'a closed socket sends nothing');
  });

  it('closes with 1009 on a message above maxFrameBytes', async () => {
    const { client, socket } = await open((s) => s.onText(() => {}));
    const serverSide = serverCloseOf(socket);
    client.send('x'.repeat(2000));
    assert.equal((await closeOf(client)).code, 1009);
    assert.equal((await serverSide).code, 1009);
    assert.equal(await metricValue(ws.registry, 'fleetd_hub_refused_total', { endpoint: 'test', reason: 'size' }), 1);
  });

  it('closes with 1007 on text that is not UTF-8', async () => {
    const { client, socket } = await open((s) => s.onText(() => {}));
    const serverSide = serverCloseOf(socket);
    client.send(Buffer.from([0x68, 0xff, 0xfe]), { binary: false });
    assert.equal((await closeOf(client)).code, 1007);
    assert.equal((await serverSide).code, 1007);
  });

  it('closes with 1008 when the peer sends more messages a minute than allowed', async () => {
    const handled: string[] = [];
    const { client } = await open((s) => s.onText((text) => void handled.push(text)));
    for (let i = 0; i < 25; i++) client.send(`m${i}`);
    assert.deepEqual(await closeOf(client), { code: 1008, reason: 'message rate limited' });
    assert.equal(handled.length, 20, 'the allowance is handled, nothing after it');
    assert.equal(await metricValue(ws.registry, 'fleetd_hub_refused_total', { endpoint: 'test', reason: 'rate' }), 1);
  });

  it('counts messages waiting for a busy handler against the rate limit', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => (release = resolve));
    const { client, socket } = await open((s) => s.onText(() => blocked));
    for (let i = 0; i < 21; i++) client.send(`m${i}`);
    assert.deepEqual(await closeOf(client), { code: 1008, reason: 'message rate limited' });
    release();
    assert.equal(socket.open, false);
  });

  it('closes with 1003 on a binary frame when the endpoint takes none, and hands it over when it does', async () => {
    const { client } = await open((s) => s.onText(() => {}));
    client.send(Buffer.from([1, 2, 3]));
    assert.deepEqual(await closeOf(client), { code: 1003, reason: 'binary frames are not accepted' });
    assert.equal(await metricValue(ws.registry, 'fleetd_hub_refused_total', { endpoint: 'test', reason: 'binary' }), 1);

    const frames: Array<string | Buffer> = [];
    const taker = await open((s) => {
      s.onText((text) => void frames.push(text));
      s.onBinary(async (data) => {
        await sleep(10);
        frames.push(data);
      });
    });
    taker.client.send(Buffer.from([1, 2, 3]));
    taker.client.send('after');
    await eventually(() => frames.length === 2);
    assert.deepEqual(frames, [Buffer.from([1, 2, 3]), 'after']);
    taker.client.close();
  });

  it('closes with 1011 when a handler throws or rejects, and logs why', async () => {
    const thrower = await open((s) =>
      s.onText(() => {
        throw new Error('handler threw');
      }),
    );
    thrower.client.send('boom');
    assert.deepEqual(await closeOf(thrower.client), { code: 1011, reason: 'internal error' });

    const later: string[] = [];
    const rejecter = await open((s) =>
      s.onText(async (text) => {
        later.push(text);
        throw new Error('handler rejected');
      }),
    );
    rejecter.client.send('one');
    rejecter.client.send('two');
    assert.deepEqual(await closeOf(rejecter.client), { code: 1011, reason: 'internal error' });
    assert.deepEqual(later, ['one'], 'nothing is handled after the failure');
    const logged = JSON.stringify(ws.logs);
    assert.match(logged, /handler threw/);
    assert.match(logged, /handler rejected/);
  });

  it('closes with the given code and a reason cut to 123 bytes; onClose reports it once, even when registered late', async () => {
    const { client, socket } = await open(() => {});
    const clientSide = closeOf(client);
    socket.close(4000, `replaced ${'é'.repeat(100)}`);
    socket.close(1000, 'second close is ignored');
    const { code, reason } = await clientSide;
    assert.equal(code, 4000);
    assert.ok(Buffer.byteLength(reason) <= 123);
    assert.ok(reason.startsWith('replaced éé'));
    assert.ok(!reason.includes('\ufffd'), 'no character cut in half');
    await eventually(() => serverClosed.some((c) => c.socket === socket));
    assert.equal(serverClosed.filter((c) => c.socket === socket).length, 1);
    assert.equal((await serverCloseOf(socket)).code, 4000);
  });

  it('reports the peer close code when the peer ends the connection', async () => {
    const { client, socket } = await open(() => {});
    const serverSide = serverCloseOf(socket);
    client.close(4321, 'client leaves');
    assert.deepEqual(await serverSide, { code: 4321, reason: 'client leaves' });
    assert.equal(await metricValue(ws.registry, 'fleetd_connected_clients', { endpoint: 'test' }), 0);
  });
});
