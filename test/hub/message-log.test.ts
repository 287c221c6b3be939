import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ConfigKey } from '../../src/config/keys.ts';
import { loadConfig } from '../../src/config/load.ts';
import { formatLine, frameRedactor, openMessageLog, type MessageLogEntry } from '../../src/hub/message-log.ts';
import { recordingLogger } from '../helpers/logger.ts';

const dirs: string[] = [];
after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function configIn(flags: Partial<Record<ConfigKey, string>> = {}) {
  const data = mkdtempSync(join(tmpdir(), 'fleetd-msglog-'));
  dirs.push(data);
  return loadConfig({ env: {}, cwd: data, flags: { data, ...flags } }).config;
}

const defaultPatterns = configIn().messageLogRedact;
const redact = frameRedactor(defaultPatterns);
const entry = (text: string | Buffer, direction: 'in' | 'out' = 'out'): MessageLogEntry => ({ endpoint: 'relay', direction, channel: 'buoy01', text });

describe('message log lines', () => {
  it("are Paikea's layout with an ISO time: < page to device, > device to page", () => {
    const at = new Date('2024-05-01T12:00:00.000Z');
    assert.equal(formatLine(entry('{"batt/main_v": 3.91}'), redact, at), '2024-05-01T12:00:00.000Z relay > buoy01/ {"batt/main_v": 3.91}\n');
    assert.equal(formatLine(entry('["GET","wifi",[]]', 'in'), redact, at), '2024-05-01T12:00:00.000Z relay < buoy01/ ["GET","wifi",[]]\n');
  });

  it('keep a frame on one line: newlines and control characters are escaped, binary frames are described', () => {
    const line = formatLine(entry('12:00 : first\nsecond\r\u001b[31mred'), redact);
    assert.equal(line.split('\n').length, 2, 'one line and its end');
    assert.ok(line.endsWith(' buoy01/ 12:00 : first\\nsecond\\r\\u001b[31mred\n'), line);
    assert.ok(formatLine(entry(Buffer.from([0, 1, 2, 255])), redact).endsWith(' buoy01/ <binary 4 bytes>\n'));
    assert.ok(formatLine({ ...entry('x'), channel: 'a\nb' }, redact).includes(' a\\nb/ x'), 'the channel cannot forge a line either');
  });
});

describe('message log redaction', () => {
  it('replaces the values of matching keys at any depth, case-insensitively', () => {
    const shown = JSON.parse(redact(JSON.stringify({ 'wifi/ssid': 'home', 'wifi/Password': 'hunter2', nested: [{ apiKey: 'k1', deeper: { SECRET_value: 2, token: { a: 1 } } }] })));
    assert.deepEqual(shown, { 'wifi/ssid': 'home', 'wifi/Password': '[redacted]', nested: [{ apiKey: '[redacted]', deeper: { SECRET_value: '[redacted]', token: '[redacted]' } }] });
  });

  it('replaces the arguments of matching relay commands', () => {
    assert.equal(redact('["CMD","store_new_sta",["home","hunter2"]]'), '["CMD","store_new_sta",["[redacted]"]]');
    assert.equal(redact('["CMD","test_new_sta",["home"]]'), '["CMD","test_new_sta",["[redacted]"]]');
    assert.equal(redact('["CMD","switch_app",["buoy"]]'), '["CMD","switch_app",["buoy"]]', 'other commands are kept');
    assert.equal(redact('[["CMD","store_new_sta",["a","b"]]]'), '[["CMD","store_new_sta",["[redacted]"]]]');
  });

  it('keeps frames without secrets byte for byte', () => {
    for (const text of ['{"batt/main_v": 3.91}', '["GET","wifi",[]]', '  {"a" : [1, 2]}  ', '"password"', '42']) assert.equal(redact(text), text);
  });

  it('cuts text that is not JSON from the first matching word on', () => {
    assert.equal(redact('12:00 : all good'), '12:00 : all good');
    assert.equal(redact('["CMD","store_new_sta",["home","hunter2"]'), '["CMD","store_new_sta [redacted]');
    assert.equal(redact('{"wifi/stored/ok", "True"}'), '{"wifi/stored/ok", "True"}', 'the invalid JSON Paikea firmware sends passes');
    assert.equal(redact('login password=hunter2'), 'login password [redacted]');
  });

  it("inspects frames quoted in a device's error echo", () => {
    const echo = JSON.stringify({ error: '["CMD","store_new_sta",["home","hunter2"]' });
    assert.ok(!redact(echo).includes('hunter2'), redact(echo));
    const valid = JSON.stringify({ error: '["CMD","store_new_sta",["home","hunter2"]]' });
    assert.ok(!redact(valid).includes('hunter2'), redact(valid));
  });

  it('redacts under a __proto__ key as under any other', () => {
    const shown = redact('{"__proto__": {"password": "hunter2"}, "a": {"__proto__": "x", "token": "t"}}');
    assert.ok(!shown.includes('hunter2') && !shown.includes('"t"'), shown);
    assert.deepEqual(JSON.parse(shown), JSON.parse('{"__proto__": {"password": "[redacted]"}, "a": {"__proto__": "x", "token": "[redacted]"}}'));
  });

  it('does not write what is nested too deep to inspect', () => {
    const deep = `${'['.repeat(100)}{"password":"hunter2"}${']'.repeat(100)}`;
    assert.ok(!redact(deep).includes('hunter2'));
    assert.doesNotThrow(() => redact('['.repeat(200_000) + ']'.repeat(200_000)));
  });

  it('with no patterns, changes nothing', () => {
    assert.equal(frameRedactor([])('{"password":"x"}'), '{"password":"x"}');
  });
});

describe('message log file', () => {
  it("is <data>/messages.log by default and nothing with 'off'", async () => {
    const config = configIn();
    const log = openMessageLog(config, recordingLogger().logger);
    log.write(entry('{"info": "Done"}'));
    await log.close();
    assert.match(readFileSync(join(config.data, 'messages.log'), 'utf8'), /^\S+ relay > buoy01\/ \{"info": "Done"\}\n$/);

    const off = configIn({ messageLog: 'off' });
    const none = openMessageLog(off, recordingLogger().logger);
    none.write(entry('{"info": "Done"}'));
    await none.close();
    assert.deepEqual(readdirSync(off.data), []);
  });

  it('writes to the file named, creating its folder', async () => {
    const config = configIn();
    const path = join(config.data, 'logs', 'relay.log');
    const log = openMessageLog({ ...config, messageLog: path }, recordingLogger().logger);
    log.write(entry('{}'));
    await log.close();
    assert.ok(existsSync(path));
  });

  it('rotates before the file would pass messageLogMaxBytes, keeping messageLogFiles older files', async () => {
    const config = configIn({ messageLogMaxBytes: '1024', messageLogFiles: '2' });
    const path = join(config.data, 'messages.log');
    // Left by an earlier run with more files kept: deleted at the first rotation.
    writeFileSync(`${path}.7`, 'old\n');
    const log = openMessageLog(config, recordingLogger().logger);
    for (let i = 0; i < 100; i++) log.write(entry(JSON.stringify({ n: i, pad: 'x'.repeat(60) })));
    await log.close();
    assert.deepEqual(readdirSync(config.data).sort(), ['messages.log', 'messages.log.1', 'messages.log.2']);
    for (const name of readdirSync(config.data)) assert.ok(statSync(join(config.data, name)).size <= 1024, `${name} is within the limit`);
    const numbers = (name: string) => [...readFileSync(join(config.data, name), 'utf8').matchAll(/"n":(\d+)/g)].map((m) => Number(m[1]));
    const kept = [...numbers('messages.log.2'), ...numbers('messages.log.1'), ...numbers('messages.log')];
    assert.deepEqual(kept, Array.from({ length: kept.length }, (_, i) => 100 - kept.length + i), 'the newest lines, in order, none missing');
  });

  it('appends to an existing file and counts it towards the limit', async () => {
    const config = configIn({ messageLogMaxBytes: '1024' });
    const path = join(config.data, 'messages.log');
    writeFileSync(path, 'x'.repeat(1000) + '\n');
    const log = openMessageLog(config, recordingLogger().logger);
    log.write(entry('{"after": "restart"}'));
    await log.close();
    assert.ok(readFileSync(`${path}.1`, 'utf8').startsWith('xxx'));
    assert.match(readFileSync(path, 'utf8'), /"after"/);
  });

  it('drops and counts lines while its queue is full, and says so once', async () => {
    const config = configIn({ messageLogMaxBytes: String(1024 ** 3) });
    const { logger, entries } = recordingLogger();
    const log = openMessageLog(config, logger);
    const big = 'y'.repeat(1024 * 1024);
    const heapBefore = process.memoryUsage().heapUsed;
    // Written without yielding: the file gets nothing until this loop ends.
    for (let i = 0; i < 40; i++) log.write(entry(big));
    assert.ok(process.memoryUsage().heapUsed - heapBefore < 64 * 1024 * 1024, 'memory stays bounded');
    await log.close();
    const lines = readFileSync(join(config.data, 'messages.log'), 'utf8').split('\n').filter(Boolean).length;
    assert.ok(lines >= 1 && lines < 40, `${lines} lines written`);
    const warnings = entries.filter((e) => e.msg === 'the message log cannot keep up: dropping lines until its queue drains');
    assert.equal(warnings.length, 1);
    const summary = entries.find((e) => typeof e.dropped === 'number' && String(e.msg).startsWith('the message log caught up'));
    assert.equal(summary?.dropped, 40 - lines);
  });

  it('never writes a store_new_sta password', async () => {
    const config = configIn();
    const log = openMessageLog(config, recordingLogger().logger);
    log.write(entry('["CMD","store_new_sta",["home","hunter2"]]', 'in'));
    log.write(entry('["CMD","test_new_sta",["home","hunter2"]', 'in'));
    log.write(entry(JSON.stringify({ error: '["CMD","test_new_sta",["home","hunter2"]' })));
    await log.close();
    const text = readFileSync(join(config.data, 'messages.log'), 'utf8');
    assert.equal(text.split('\n').filter(Boolean).length, 3);
    assert.ok(!text.includes('hunter2'), text);
  });

  it('ignores writes after close', async () => {
    const config = configIn();
    const log = openMessageLog(config, recordingLogger().logger);
    await log.close();
    log.write(entry('late'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(existsSync(join(config.data, 'messages.log')), false);
  });
});
