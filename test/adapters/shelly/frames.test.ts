import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requestObject } from '../../../src/adapters/jsonrpc/messages.ts';
import { componentCall, parseComponentKey } from '../../../src/adapters/shelly/components.ts';
import { methodNotFoundFrame, readFrame, requestFrame } from '../../../src/adapters/shelly/frames.ts';
import { helloSummary, readHello } from '../../../src/adapters/shelly/handle-hello.ts';
import { shellyDenyFrames } from '../../../src/adapters/shelly/send-deny.ts';

/** The Shelly framing without sockets: what is read of a device's frame, and what fleetd writes. */

describe('Shelly frames', () => {
  it('writes requests in Shelly framing: src fleetd, params left out when empty', () => {
    assert.deepEqual(JSON.parse(requestFrame({ jsonrpc: '2.0', id: 4, method: 'Shelly.GetComponents', params: { offset: 0, dynamic_only: true } })), {
      jsonrpc: '2.0',
      id: 4,
      src: 'fleetd',
      method: 'Shelly.GetComponents',
      params: { offset: 0, dynamic_only: true },
    });
    assert.equal(requestFrame(requestObject(1, 'Shelly.GetDeviceInfo')), '{"jsonrpc":"2.0","method":"Shelly.GetDeviceInfo","id":1,"src":"fleetd"}');
    assert.deepEqual(JSON.parse(methodNotFoundFrame('x', 'shellyplus1-a')), { jsonrpc: '2.0', id: 'x', src: 'fleetd', dst: 'shellyplus1-a', error: { code: -32601, message: 'Method not found' } });
  });

  it("sends Fleet Manager's classic deny pair byte for byte", () => {
    assert.deepEqual(shellyDenyFrames, [
      '{"id":998,"src":"fleetd","method":"WS.SetConfig","params":{"config":{"server":"#","enable":false}}}',
      '{"id":999,"src":"fleetd","method":"Shelly.Reboot"}',
    ]);
  });

  it('reads responses without a jsonrpc member, and keeps the src', () => {
    const frame = readFrame('{"id":1,"src":"shellyplus1pm-a8032abb995c","dst":"fleetd","result":{"was_on":false}}');
    assert.equal(frame.kind, 'message');
    if (frame.kind !== 'message') return;
    assert.equal(frame.src, 'shellyplus1pm-a8032abb995c');
    assert.deepEqual(frame.message.kind === 'response' && frame.message.ok && frame.message.result, { was_on: false });
    assert.deepEqual(readFrame('{"id":8,"src":"s","error":{"code":-105,"message":"Bad id=7"}}').kind, 'message');
  });

  it('finds nothing to read in arrays, bad JSON, a non-string src, deep nesting or __proto__ members', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    for (const text of ['[{"src":"a","method":"NotifyStatus","params":{}}]', '[]', '{', '{"src":5,"method":"NotifyStatus","params":{}}', `{"src":"a","method":"NotifyStatus","params":{"x":${deep}}}`, '{"src":"a","method":"NotifyStatus","params":{"sys":{"__proto__":{}}}}', '{"no":"method"}']) {
      assert.equal(readFrame(text).kind, 'unreadable', text.slice(0, 60));
    }
    assert.deepEqual(readFrame('nope'), { kind: 'unreadable', reason: 'not valid JSON', notJson: true });
    // Thirty levels are more than any status nests; that is still read.
    const thirty = '{"a":'.repeat(30) + '1' + '}'.repeat(30);
    assert.equal(readFrame(`{"src":"a","method":"NotifyStatus","params":${thirty}}`).kind, 'message');
  });
});

describe('Shelly hello', () => {
  it('takes NotifyFullStatus and NotifyStatus notifications with a usable src', () => {
    const full = readHello('{"src":"shellyplus1pm-a8032abb995c","dst":"ws","method":"NotifyFullStatus","params":{"ts":1.5,"sys":{"uptime":4}}}');
    assert.deepEqual(full, { ok: true, externalId: 'shellyplus1pm-a8032abb995c', method: 'NotifyFullStatus', params: { ts: 1.5, sys: { uptime: 4 } } });
    const wallDisplay = readHello('{"src":"ShellyWallDisplay-000822A1B2C3","method":"NotifyStatus","params":{"ts":2}}');
    assert.equal(wallDisplay.ok && wallDisplay.externalId, 'ShellyWallDisplay-000822A1B2C3');
    assert.deepEqual(readHello('{"src":"x@y:z.1_2-3","method":"NotifyStatus"}'), { ok: true, externalId: 'x@y:z.1_2-3', method: 'NotifyStatus', params: {} });
  });

  it('refuses anything else with 4100 (not JSON) or 4101, saying why in the detail', () => {
    assert.deepEqual(readHello('{"src":'), { ok: false, code: 4100, reason: 'hello is not JSON', detail: 'not valid JSON' });
    const details = ['{"src":"a","method":"NotifyEvent","params":{}}', '{"id":1,"src":"a","method":"NotifyStatus"}', '{"src":"a b","method":"NotifyStatus"}', '{"method":"NotifyStatus"}', '{"src":"a","method":"NotifyStatus","params":[1]}'].map((text) => {
      const hello = readHello(text);
      assert.equal(hello.ok, false);
      assert.equal(!hello.ok && hello.code, 4101);
      return !hello.ok && hello.detail;
    });
    assert.deepEqual(details, ['method NotifyEvent', 'a request', 'no usable src', 'no usable src', 'params is not an object']);
  });

  it('passes small hellos to admission whole and large ones as a summary', () => {
    const small = { ts: 1, sys: { mac: 'A1' } };
    assert.equal(helloSummary(small), small);
    const large = { ts: 1, sys: { mac: 'A1' }, wifi: { rssi: -50 }, ...Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`input:${i}`, { id: i, state: false, note: 'x'.repeat(40) }])) };
    const summary = helloSummary(large) as { components: string[]; sys: unknown; wifi: unknown };
    assert.equal(summary.components.length, 202);
    assert.deepEqual(summary.sys, { mac: 'A1' });
    assert.ok(JSON.stringify(summary).length <= 8 * 1024);
  });
});

describe('Shelly component keys', () => {
  it('maps keys to their RPC namespace, with an id for instances only', () => {
    assert.deepEqual(componentCall(parseComponentKey('switch:0')!, 'GetConfig'), { method: 'Switch.GetConfig', params: { id: 0 } });
    assert.deepEqual(componentCall(parseComponentKey('boolean:200')!, 'GetStatus'), { method: 'Boolean.GetStatus', params: { id: 200 } });
    assert.deepEqual(componentCall(parseComponentKey('sys')!, 'GetConfig'), { method: 'Sys.GetConfig' });
    assert.deepEqual(componentCall(parseComponentKey('bthomesensor:201')!, 'GetConfig'), { method: 'Bthomesensor.GetConfig', params: { id: 201 } });
  });

  it('takes nothing that is not a key for one', () => {
    for (const key of ['__proto__', 'Switch:0', 'switch:', 'switch:x', ':0', '../sys', 'a b', 'sys.getconfig', '', 5, null, 'x'.repeat(65)]) {
      assert.equal(parseComponentKey(key), undefined, String(key));
    }
  });
});
