import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FleetError } from '../../src/core/errors.ts';
import { limitsFromConfig, type UpgradeRequest, type WebSocketEndpoint } from '../../src/http/websocket.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { FleetSocket } from '../../src/hub/socket.ts';
import { closeOf, connect, eventually, metricValue, rawExchange, rawUpgrade, refusal, startWebSockets, upgradeHeaders, type WsHarness } from '../hub/websocket-harness.ts';

/** An endpoint that records who connected and echoes text back. */
function echoEndpoint(name: string, path: string, kind: 'device' | 'client', authenticate?: (request: UpgradeRequest) => Promise<unknown>) {
  const accepted: Array<{ socket: FleetSocket; request: UpgradeRequest; auth: unknown }> = [];
  const endpoint: WebSocketEndpoint = {
    name,
    kind,
    match: (pathname) => pathname === path,
    ...(authenticate && { authenticate }),
    accept(socket, request, auth) {
      accepted.push({ socket, request, auth });
      socket.onText((text) => void socket.send(text));
    },
  };
  return { endpoint, accepted };
}

describe('WebSocket upgrades', () => {
  let ws: WsHarness;
  const seen: UpgradeRequest[] = [];
  let authError: Error | undefined;
  let holdAuth: { started: () => void; release: Promise<void> } | undefined;
  const open = echoEndpoint('open', '/open', 'client');
  const guarded = echoEndpoint('guarded', '/guarded', 'device', async (request) => {
    seen.push(request);
    if (holdAuth) {
      holdAuth.started();
      await holdAuth.release;
    }
    if (authError) throw authError;
    return { who: 'device-1' };
  });
  const broken: WebSocketEndpoint = {
    name: 'broken',
    kind: 'client',
    match: (pathname) => pathname === '/broken',
    accept() {
      throw new Error('accept exploded');
    },
  };
  // A second endpoint for the same path never sees anything: the first match wins.
  const shadowed = echoEndpoint('shadowed', '/open', 'client');

  before(async () => {
    ws = await startWebSockets([open.endpoint, guarded.endpoint, broken, shadowed.endpoint]);
  });
  after(async () => {
    await ws?.close();
  });

  it('routes by path to the first matching endpoint and counts the connection', async () => {
    const client = await connect(`${ws.url}/open?x=1`);
    assert.equal(open.accepted.length, 1);
    assert.equal(shadowed.accepted.length, 0);
    const { request, socket } = open.accepted[0]!;
    assert.equal(request.url.pathname, '/open');
    assert.equal(request.url.searchParams.get('x'), '1');
    assert.equal(request.remoteAddress, '127.0.0.1');
    assert.equal(socket.endpoint, 'open');
    assert.match(socket.id, /^ws_/);
    assert.equal(ws.wss.size, 1);
    assert.equal(await metricValue(ws.registry, 'fleetd_connected_clients', { endpoint: 'open' }), 1);
    const echoed = new Promise((resolve) => client.once('message', (data) => resolve(data.toString())));
    client.send('hello');
    assert.equal(await echoed, 'hello');
    client.close(1000, 'bye');
    assert.deepEqual(await closeOf(client), { code: 1000, reason: 'bye' });
    await eventually(() => ws.wss.size === 0, 2000, 'the server to forget the socket');
    assert.equal(await metricValue(ws.registry, 'fleetd_connected_clients', { endpoint: 'open' }), 0);
  });

  it('answers an upgrade on an unknown path with 404 and the JSON error body', async () => {
    const refused = await refusal(`${ws.url}/nowhere`);
    assert.equal(refused.status, 404);
    assert.match(String(refused.headers['content-type']), /application\/json/);
    assert.equal(refused.body.error.code, 'not_found');
    assert.match(refused.body.error.message, /\/nowhere/);
  });

  it('refuses with the status and body of the FleetError authenticate throws, and never upgrades', async () => {
    const before = guarded.accepted.length;
    authError = new FleetError('unauthenticated', 'Invalid, expired or revoked credentials');
    try {
      const refused = await refusal(`${ws.url}/guarded`, [], { headers: { authorization: 'Bearer wrong' } });
      assert.equal(refused.status, 401);
      assert.deepEqual(refused.body, { error: { code: 'unauthenticated', message: 'Invalid, expired or revoked credentials' } });

      authError = new FleetError('forbidden', 'Not yours', { details: { reason: 'other_org' } });
      const forbidden = await refusal(`${ws.url}/guarded`);
      assert.equal(forbidden.status, 403);
      assert.deepEqual(forbidden.body.error.details, { reason: 'other_org' });

      authError = new FleetError('rate_limited', 'Too many attempts', { retryAfter: 30 });
      const limited = await refusal(`${ws.url}/guarded`);
      assert.equal(limited.status, 429);
      assert.equal(limited.headers['retry-after'], '30');
      assert.equal(limited.body.error.code, 'rate_limited');

      authError = new Error('database on fire');
      const failed = await refusal(`${ws.url}/guarded`);
      assert.equal(failed.status, 500);
      assert.deepEqual(failed.body, { error: { code: 'internal', message: 'Internal server error' } });
      assert.ok(ws.logs.some((entry) => entry.level === 50 && JSON.stringify(entry).includes('database on fire')), 'the unexpected error is logged');
    } finally {
      authError = undefined;
    }
    assert.equal(guarded.accepted.length, before, 'no refused upgrade reached accept');
    assert.equal(await metricValue(ws.registry, 'fleetd_hub_refused_total', { endpoint: 'guarded', reason: 'auth' }), 3);
  });

  it('hands accept what authenticate returned and counts a device connection', async () => {
    const client = await connect(`${ws.url}/guarded`);
    assert.deepEqual(guarded.accepted.at(-1)!.auth, { who: 'device-1' });
    assert.equal(await metricValue(ws.registry, 'fleetd_connected_devices', { endpoint: 'guarded' }), 1);
    client.close();
    await closeOf(client);
  });

  it('finds credentials in the Authorization header, a subprotocol, or the query', async () => {
    const credentialsOf = async (path: string, protocols: string[], headers: Record<string, string> = {}) => {
      const client = await connect(`${ws.url}${path}`, protocols, { headers });
      client.close();
      return { credentials: seen.at(-1)!.credentials, protocol: client.protocol };
    };
    assert.deepEqual(await credentialsOf('/guarded', [], { authorization: 'Bearer from-header' }), {
      credentials: { authorization: 'Bearer from-header', ip: '127.0.0.1' },
      protocol: '',
    });
    assert.deepEqual(await credentialsOf('/guarded', ['bearer.from-protocol', 'jsonrpc-2.0']), {
      credentials: { authorization: 'Bearer from-protocol', ip: '127.0.0.1' },
      protocol: 'jsonrpc-2.0',
    });
    const key = 'fk_abcdefghijkl_0123456789012345678901234567890123456789';
    assert.deepEqual(await credentialsOf('/guarded', ['jsonrpc-2.0', key]), { credentials: { authorization: `Bearer ${key}`, ip: '127.0.0.1' }, protocol: 'jsonrpc-2.0' });
    assert.deepEqual(await credentialsOf('/guarded?token=from-query', []), { credentials: { authorization: 'Bearer from-query', ip: '127.0.0.1' }, protocol: '' });
    assert.deepEqual(await credentialsOf('/guarded', []), { credentials: { ip: '127.0.0.1' }, protocol: '' });
    // The header wins over the others; the query only counts when nothing else was given.
    assert.equal((await credentialsOf('/guarded?token=q', ['bearer.p', 'x'], { authorization: 'Bearer h' })).credentials.authorization, 'Bearer h');
    assert.equal((await credentialsOf('/guarded?token=q', ['bearer.p', 'x'])).credentials.authorization, 'Bearer p');
    // The session cookie a browser would attach is not a credential here (any site's page could use it).
    assert.deepEqual((await credentialsOf('/guarded', [], { cookie: 'fleetd_session=abc' })).credentials, { ip: '127.0.0.1' });
  });

  it('echoes the first offered subprotocol that is not a credential, and never a credential', async () => {
    const key = 'fk_abcdefghijkl_0123456789012345678901234567890123456789';
    const offer = async (protocols: string) => {
      const answer = await rawUpgrade(ws.port, '/open', { ...upgradeHeaders, 'sec-websocket-protocol': protocols });
      answer.socket?.destroy();
      assert.equal(answer.status, 101);
      return answer.headers['sec-websocket-protocol'];
    };
    assert.equal(await offer('jsonrpc-2.0'), 'jsonrpc-2.0');
    assert.equal(await offer(`bearer.secret-token, jsonrpc-2.0, other`), 'jsonrpc-2.0');
    assert.equal(await offer(`${key}, second`), 'second');
    assert.equal(await offer('bearer.secret-token'), undefined);
    assert.equal(await offer(`Bearer.secret-token, ${key}`), undefined);
    const none = await rawUpgrade(ws.port, '/open', upgradeHeaders);
    none.socket?.destroy();
    assert.equal(none.headers['sec-websocket-protocol'], undefined);
  });

  it('refuses malformed upgrades with 400 and the JSON error body, before authenticating', async () => {
    const before = seen.length;
    const badProtocol = await rawUpgrade(ws.port, '/guarded', { ...upgradeHeaders, 'sec-websocket-protocol': 'a,,b' });
    assert.equal(badProtocol.status, 400);
    const noKey = await rawUpgrade(ws.port, '/guarded', { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13' });
    assert.equal(noKey.status, 400);
    const otherProtocol = await rawUpgrade(ws.port, '/guarded', { ...upgradeHeaders, upgrade: 'h2c' });
    assert.equal(otherProtocol.status, 400);
    const oldVersion = await rawUpgrade(ws.port, '/guarded', { ...upgradeHeaders, 'sec-websocket-version': '7' });
    assert.equal(oldVersion.status, 400);
    const post = await rawExchange(ws.port, 'POST /guarded HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n');
    assert.match(post, /^HTTP\/1\.1 400 /);
    assert.match(post, /"code":"bad_request"/);
    const badUrl = await rawExchange(ws.port, 'GET http://[::1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    assert.match(badUrl, /^HTTP\/1\.1 400 /);
    assert.equal(seen.length, before, 'nothing was authenticated');
  });

  it('survives a client that leaves while it is being authenticated', async () => {
    let started!: () => void;
    const authenticating = new Promise<void>((resolve) => (started = resolve));
    let release!: () => void;
    holdAuth = { started, release: new Promise((resolve) => (release = resolve)) };
    const acceptedBefore = guarded.accepted.length;
    try {
      const socket = netConnect(ws.port, '127.0.0.1');
      socket.on('error', () => {});
      const head = Object.entries(upgradeHeaders).map(([name, value]) => `${name}: ${value}\r\n`).join('');
      socket.write(`GET /guarded HTTP/1.1\r\nHost: x\r\n${head}\r\n`);
      await authenticating;
      socket.resetAndDestroy();
      await new Promise((resolve) => setTimeout(resolve, 50));
      release();
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      holdAuth = undefined;
    }
    assert.equal(guarded.accepted.length, acceptedBefore);
    // Still serving.
    const client = await connect(`${ws.url}/open`);
    client.close();
  });

  it('closes the connection with 1011 when accept throws', async () => {
    const client = await connect(`${ws.url}/broken`);
    assert.deepEqual(await closeOf(client), { code: 1011, reason: 'internal error' });
    assert.ok(ws.logs.some((entry) => JSON.stringify(entry).includes('accept exploded')));
  });
});

describe('WebSocket client address', () => {
  const upgradeFrom = async (trustProxy: boolean) => {
    const { endpoint, accepted } = echoEndpoint('open', '/open', 'client');
    const ws = await startWebSockets([endpoint], { trustProxy });
    try {
      const client = await connect(`${ws.url}/open`, [], { headers: { 'x-forwarded-for': '203.0.113.7, 10.0.0.1' } });
      client.close();
      return { address: accepted[0]!.request.remoteAddress, ip: accepted[0]!.request.credentials.ip };
    } finally {
      await ws.close();
    }
  };

  it('takes the first X-Forwarded-For entry only behind a trusted proxy', async () => {
    assert.deepEqual(await upgradeFrom(true), { address: '203.0.113.7', ip: '203.0.113.7' });
    assert.deepEqual(await upgradeFrom(false), { address: '127.0.0.1', ip: '127.0.0.1' });
  });
});

describe('WebSocket server shutdown', () => {
  it('closes every connection with 1001 and refuses new upgrades', async () => {
    const { endpoint } = echoEndpoint('open', '/open', 'client');
    const ws = await startWebSockets([endpoint]);
    const clients = await Promise.all([connect(`${ws.url}/open`), connect(`${ws.url}/open`)]);
    const closes = clients.map(closeOf);
    assert.equal(ws.wss.size, 2);
    await ws.wss.close();
    for (const close of await Promise.all(closes)) assert.deepEqual(close, { code: 1001, reason: 'server shutting down' });
    assert.equal(ws.wss.size, 0);
    const late = await refusal(`${ws.url}/open`);
    assert.equal(late.status, 503);
    assert.equal(late.body.error.code, 'unavailable');
    await ws.close();
  });

  it('cuts a connection that does not answer the close', async () => {
    const { endpoint, accepted } = echoEndpoint('open', '/open', 'client');
    const ws = await startWebSockets([endpoint]);
    const client = await connect(`${ws.url}/open`);
    // A peer that reads nothing never sees the close frame, so never answers it.
    (client as unknown as { _socket: { pause(): void } })._socket.pause();
    const serverSide = new Promise((resolve) => accepted[0]!.socket.onClose((code, reason) => resolve({ code, reason })));
    const started = Date.now();
    await ws.wss.close();
    assert.deepEqual(await serverSide, { code: 1001, reason: 'server shutting down' });
    assert.ok(Date.now() - started < 5000);
    client.terminate();
    await ws.close();
  });
});

describe('limitsFromConfig', () => {
  it('takes the ws* keys, the ping interval in milliseconds', () => {
    const { config } = loadConfig({ env: {}, cwd: import.meta.dirname, flags: { wsMaxFrame: '2048', wsRateLimit: '60', wsSendQueue: '4096', wsPingInterval: '15' } });
    assert.deepEqual(limitsFromConfig(config), { maxFrameBytes: 2048, messagesPerMinute: 60, sendQueueBytes: 4096, pingIntervalMs: 15_000, missedPongs: 2 });
  });
});
