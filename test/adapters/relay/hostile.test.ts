import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { relayChannels } from '../../../src/adapters/relay/channels.ts';
import { backends } from '../../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { eventually, rawUpgrade, refusal, upgradeHeaders } from '../../hub/websocket-harness.ts';
import { presence, relayDevice, RelayClient, relayUrl } from './harness.ts';

/** What devices and pages may send on purpose or by accident: relayed or refused by the rules, never a crash. */
const sqlite = (await backends()).find((b) => b.name === 'sqlite')!;

describe('relay: hostile frames and paths', () => {
  let server: TestServer;
  let org: string;
  let operator: string;
  let logDir: string;
  const open: RelayClient[] = [];
  const client = async (channel: string, token: string, options = {}) => {
    const c = await RelayClient.open(relayUrl(server.url, channel), token, 'header', options);
    open.push(c);
    return c;
  };
  const page = async (channel: string, expected: 'online' | 'offline') => {
    const c = await client(channel, operator);
    assert.deepEqual(JSON.parse((await c.frame(1)).data as string), presence(expected, channel));
    return c;
  };
  const logLines = (channel: string) => (existsSync(join(logDir, 'messages.log')) ? readFileSync(join(logDir, 'messages.log'), 'utf8') : '').split('\n').filter((l) => l.includes(` ${channel}/ `));

  before(async () => {
    logDir = mkdtempSync(join(tmpdir(), 'fleetd-relay-hostile-'));
    server = await startTestServer(sqlite, { wsMaxFrame: '4096', wsRateLimit: '120', wsPingInterval: '1', messageLog: join(logDir, 'messages.log') });
    org = server.admin.orgId;
    operator = (await memberWithRole(server, org, 'hostile-operator@example.com', 'operator')).token;
  });
  after(async () => {
    for (const c of open) c.ws.terminate();
    await server?.close();
    if (logDir) rmSync(logDir, { recursive: true, force: true });
  });

  it('relays binary frames both ways and logs them by size (Paikea defect 7)', async () => {
    const device = await relayDevice(server, org, 'bin01');
    const watcher = await page('bin01', 'offline');
    const buoy = await client('bin01', device.key);
    await watcher.sees(presence('online', 'bin01'));
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x0d]);
    buoy.send(bytes);
    watcher.send(bytes);
    assert.deepEqual([...((await watcher.frame(3)).data as Buffer)], [...bytes]);
    assert.deepEqual([...((await buoy.frame(1)).data as Buffer)], [...bytes]);
    await eventually(() => logLines('bin01').length === 2, 5000, 'two log lines');
    for (const line of logLines('bin01')) assert.match(line, /bin01\/ <binary 5 bytes>$/);
  });

  it('passes text that is not JSON through unchanged and logs it on one line each (defect 9)', async () => {
    const device = await relayDevice(server, org, 'text01');
    const watcher = await page('text01', 'offline');
    const buoy = await client('text01', device.key);
    await watcher.sees(presence('online', 'text01'));
    const frames = ['{"wifi/stored/ok", "True"}', '12:00:01 : started\n12:00:02 : still\r\n', '\u001b[2J', '{"a":', ' '];
    for (const frame of frames) buoy.send(frame);
    await watcher.frame(2 + frames.length);
    assert.deepEqual(watcher.texts.slice(2), frames);
    await eventually(() => logLines('text01').length === frames.length, 5000, 'a log line per frame');
    assert.ok(logLines('text01').some((l) => l.endsWith('text01/ 12:00:01 : started\\n12:00:02 : still\\r\\n')));
    assert.ok(!readFileSync(join(logDir, 'messages.log'), 'utf8').includes('\u001b'), 'no terminal escapes in the log');
  });

  it('closes a connection that sends a frame above wsMaxFrame with 1009; a frame just below passes whole', async () => {
    const device = await relayDevice(server, org, 'big01');
    const watcher = await page('big01', 'offline');
    const buoy = await client('big01', device.key);
    await watcher.sees(presence('online', 'big01'));
    const fits = 'x'.repeat(4096);
    buoy.send(fits);
    assert.equal((await watcher.frame(3)).data, fits);
    buoy.send('y'.repeat(4097));
    assert.equal((await buoy.closed).code, 1009);
    await watcher.sees(presence('offline', 'big01'));
    watcher.send(Buffer.alloc(5000));
    assert.equal((await watcher.closed).code, 1009);
  });

  it('closes a flooding device with 1008, and a page flooding an absent device too', async () => {
    const device = await relayDevice(server, org, 'flood01');
    const watcher = await page('flood01', 'offline');
    const buoy = await client('flood01', device.key);
    await watcher.sees(presence('online', 'flood01'));
    for (let i = 0; i < 300; i++) buoy.send(`{"n": ${i}}`);
    assert.equal((await buoy.closed).code, 1008);
    await watcher.sees(presence('offline', 'flood01'));
    assert.ok(watcher.texts.length < 130, `at most the allowance got through (${watcher.texts.length})`);

    const flooder = await page('flood01', 'offline');
    for (let i = 0; i < 300; i++) flooder.send('["CMD","reset",[]]');
    assert.equal((await flooder.closed).code, 1008);
    assert.ok(flooder.texts.filter((t) => t === '{"error":"device offline"}').length <= 120, 'the error replies are bounded by the same allowance');
  });

  it('notices a device that stopped answering pings and tells its pages (defect 3)', async () => {
    const device = await relayDevice(server, org, 'mute01');
    const watcher = await page('mute01', 'offline');
    const buoy = await client('mute01', device.key, { autoPong: false });
    await watcher.sees(presence('online', 'mute01'));
    await watcher.sees(presence('offline', 'mute01'), 10_000);
    await buoy.closed;
  });

  it('refuses malformed channel names and path tricks before the upgrade', async () => {
    const withOperator = { headers: { authorization: `Bearer ${operator}` } };
    const base = server.url.replace(/^http/, 'ws');
    const bad = ['', '.', 'a/b', '%00', 'a%00b', '%2F', 'é', 'a b', 'a%20b', 'x'.repeat(129), '...', 'buoy?', 'a:b'];
    for (const name of bad) {
      const reply = await refusal(`${base}/api/relay/${name}`, [], withOperator);
      assert.ok([400, 404].includes(reply.status), `${JSON.stringify(name)} got ${reply.status}`);
      assert.ok(reply.body.error.code === 'bad_request' || reply.body.error.code === 'not_found');
    }
    assert.equal((await refusal(`${base}/api/relay/%00`, [], withOperator)).status, 400);
    assert.equal((await refusal(`${base}/api/relay/${'x'.repeat(129)}`, [], withOperator)).status, 400);
    // URLs resolve dot segments: these name other paths, which no endpoint serves.
    for (const path of ['/api/relay/../x', '/api/relay/%2e%2e', '/api/relay/..']) {
      const reply = await rawUpgrade(Number(new URL(server.url).port), path, { ...upgradeHeaders, authorization: `Bearer ${operator}` });
      assert.ok(reply.status === 404 || reply.status === 400, `${path} got ${reply.status}`);
    }
    assert.equal((await refusal(`${base}/api/relay/${'x'.repeat(128)}`, [], withOperator)).status, 404, 'the longest name is a name');
    assert.equal((await refusal(`${base}/api/relay/a:b@c._-`, [], withOperator)).status, 404, 'every allowed character');
    assert.equal((await refusal(`${base}/api/relay/a~b`, [], withOperator)).status, 400, 'a character no device id has');
  });

  it('ignores bus messages that carry no frame', async () => {
    const device = await relayDevice(server, org, 'bus01');
    const watcher = await page('bus01', 'offline');
    const subject = `fleetd.relay.${org}.${Buffer.from('bus01').toString('base64url')}`;
    for (const payload of [null, 1, 'text', [], {}, { text: 5 }, { binary: null }, { from: 'node_x' }]) server.server.bus.publish(`${subject}.pages`, payload);
    await assert.rejects(server.server.bus.request(`${subject}.device`, { text: 'x' }, { timeoutMs: 200 }), /Nobody is listening|No reply/);
    const buoy = await client('bus01', device.key);
    await watcher.sees(presence('online', 'bus01'));
    buoy.send('{"ok": true}');
    await watcher.sees('{"ok": true}');
    assert.deepEqual(watcher.texts, [JSON.stringify(presence('offline', 'bus01')), JSON.stringify(presence('online', 'bus01')), '{"ok": true}']);
  });

  it('keeps no channel once the connections are gone', async () => {
    for (const c of open.splice(0)) {
      c.close();
      await c.closed;
    }
    await eventually(() => relayChannels(server.server.hub).size === 0, 5000, 'no channel kept');
  });
});

describe('relay: a page that does not read (Paikea defect 4)', () => {
  let server: TestServer;
  let org: string;
  let operator: string;

  before(async () => {
    server = await startTestServer(sqlite, { wsSendQueue: String(1024 * 1024), wsRateLimit: '100000', messageLog: 'off' });
    org = server.admin.orgId;
    operator = (await memberWithRole(server, org, 'slow-operator@example.com', 'operator')).token;
  });
  after(async () => {
    await server?.close();
  });

  it('is closed with 4008 while the device and the other pages carry on', async () => {
    const device = await relayDevice(server, org, 'slow01');
    const port = Number(new URL(server.url).port);
    const stuck = await rawUpgrade(port, '/api/relay/slow01', { ...upgradeHeaders, authorization: `Bearer ${operator}` });
    assert.equal(stuck.status, 101);
    stuck.socket!.pause();
    const reader = await RelayClient.open(relayUrl(server.url, 'slow01'), operator);
    await reader.frame(1);
    const buoy = await RelayClient.open(relayUrl(server.url, 'slow01'), device.key);
    await reader.sees(presence('online', 'slow01'));
    // Far more than the kernel buffers of the stuck connection hold.
    const frame = JSON.stringify({ 'rb/msg': 'z'.repeat(32 * 1024) });
    const count = 600;
    // In steps a reading page keeps up with, however busy the machine.
    for (let sent = 0; sent < count; sent += 20) {
      for (let i = 0; i < 20; i++) buoy.send(frame);
      await reader.frame(2 + sent + 20, 30_000);
    }
    assert.ok(reader.texts.slice(2).every((t) => t === frame));
    const slowClosed = async () => /fleetd_slow_client_disconnects_total\{endpoint="relay"\} 1/.test((await request(server.url, 'GET', '/metrics')).body as string);
    await eventually(slowClosed, 10_000, 'the stuck page closed as too slow');
    assert.equal(buoy.ws.readyState, buoy.ws.OPEN, 'the device is not held back');
    buoy.ws.terminate();
    reader.ws.terminate();
  });
});
