import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { setImmediate as turn, setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { WebSocketEndpoint } from '../../src/http/websocket.ts';
import type { FleetSocket } from '../../src/hub/socket.ts';
import { closeOf, connect, eventually, metricValue, startWebSockets } from './websocket-harness.ts';

/** An endpoint that keeps its sockets for the test to use. */
function collectingEndpoint() {
  const sockets: FleetSocket[] = [];
  const closes = new Map<FleetSocket, { code: number; reason: string }>();
  const endpoint: WebSocketEndpoint = {
    name: 'feed',
    kind: 'client',
    match: (pathname) => pathname === '/feed',
    accept(socket) {
      sockets.push(socket);
      socket.onClose((code, reason) => closes.set(socket, { code, reason }));
    },
  };
  return { endpoint, sockets, closes };
}

describe('FleetSocket limits', () => {
  it('disconnects a client that does not read with 4008, while a reading client gets every message promptly', async () => {
    const { endpoint, sockets, closes } = collectingEndpoint();
    const ws = await startWebSockets([endpoint], { limits: { sendQueueBytes: 256 * 1024 } });
    try {
      const slow = await connect(`${ws.url}/feed`);
      const fast = await connect(`${ws.url}/feed`);
      const [slowSocket, fastSocket] = sockets as [FleetSocket, FleetSocket];
      (slow as unknown as { _socket: Socket })._socket.pause();
      let received = 0;
      fast.on('message', () => (received += 1));

      const chunk = 'x'.repeat(32 * 1024);
      let sent = 0;
      let slowestDelivery = 0;
      // Keep sending to both until the server gives up on the slow one (the kernel's buffers take several MB first).
      while (slowSocket.open && sent < 5000) {
        assert.equal(fastSocket.send(chunk), true);
        slowSocket.send(chunk);
        sent += 1;
        const sentAt = Date.now();
        await eventually(() => received === sent, 2000, 'the reading client to receive what was sent');
        slowestDelivery = Math.max(slowestDelivery, Date.now() - sentAt);
        await turn();
      }
      assert.equal(slowSocket.open, false, 'the slow client was let go');
      assert.ok(fastSocket.open, 'the reading client is still connected');
      assert.ok(slowestDelivery < 1000, `every message reached the reading client promptly (slowest ${slowestDelivery} ms)`);
      assert.equal(fastSocket.send('after'), true);
      await eventually(() => received === sent + 1, 2000, 'a message after the disconnect');

      // The close frame is stuck behind what the slow client never read: the connection is cut shortly after.
      await eventually(() => closes.has(slowSocket), 5000, 'the slow connection to be cut');
      assert.deepEqual(closes.get(slowSocket), { code: 4008, reason: 'send queue full' });
      const slowClosed = closeOf(slow);
      (slow as unknown as { _socket: Socket })._socket.resume();
      assert.ok([4008, 1006].includes((await slowClosed).code));
      assert.equal(await metricValue(ws.registry, 'fleetd_slow_client_disconnects_total', { endpoint: 'feed' }), 1);
      fast.close();
    } finally {
      await ws.close();
    }
  });

  it('cuts a client that stops answering pings, and keeps one that answers', async () => {
    const { endpoint, sockets, closes } = collectingEndpoint();
    const ws = await startWebSockets([endpoint], { limits: { pingIntervalMs: 100, missedPongs: 2 } });
    try {
      const silent = await connect(`${ws.url}/feed`, [], { autoPong: false });
      const alive = await connect(`${ws.url}/feed`);
      const [silentSocket, aliveSocket] = sockets as [FleetSocket, FleetSocket];
      const started = Date.now();
      const { code } = await closeOf(silent);
      assert.equal(code, 1006, 'terminated, no close handshake');
      assert.ok(Date.now() - started < 2000);
      await eventually(() => closes.has(silentSocket), 2000);
      assert.deepEqual(closes.get(silentSocket), { code: 1006, reason: 'keepalive timeout' });
      await sleep(400);
      assert.ok(aliveSocket.open, 'a client answering pings stays');
      assert.equal(alive.readyState, alive.OPEN);
      assert.equal(await metricValue(ws.registry, 'fleetd_hub_refused_total', { endpoint: 'feed', reason: 'keepalive' }), 1);
      alive.close();
    } finally {
      await ws.close();
    }
  });

  it('stops reading from a peer whose handler is busy, and catches up without losing or reordering', async () => {
    const handled: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const endpoint: WebSocketEndpoint = {
      name: 'busy',
      kind: 'device',
      match: (pathname) => pathname === '/busy',
      accept(socket) {
        socket.onText(async (text) => {
          await gate;
          handled.push(text);
        });
      },
    };
    const ws = await startWebSockets([endpoint], { limits: { pingIntervalMs: 100 } });
    try {
      const client = await connect(`${ws.url}/busy`);
      const sent = Array.from({ length: 500 }, (_, i) => `m${i}`);
      for (const text of sent) client.send(text);
      // Longer than the keepalive allows: the server, not the peer, is behind, so the peer is not cut.
      await sleep(500);
      assert.equal(client.readyState, client.OPEN);
      release();
      await eventually(() => handled.length === sent.length, 5000, 'every message to be handled');
      assert.deepEqual(handled, sent);
      client.close();
    } finally {
      await ws.close();
    }
  });
});
