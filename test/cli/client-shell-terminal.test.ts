import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { runShell, type ShellTerminal } from '../../src/cli/client/shell-session.ts';
import { waitFor } from '../helpers/process.ts';

/**
 * The terminal side of `devices shell` (raw mode, window size, restoring the terminal), which a
 * child process with piped streams cannot show: runShell on a stand-in terminal, against a
 * WebSocket server standing in for fleetd's shell endpoint.
 */

/** A terminal as runShell sees process.stdin/stdout: TTY flags, raw mode, a size that changes. */
function fakeTerminal() {
  const rawModes: boolean[] = [];
  const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: (raw: boolean) => rawModes.push(raw) });
  const stdout = Object.assign(new PassThrough(), { isTTY: true, columns: 120, rows: 40 });
  let output = '';
  stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  return { terminal: { stdin, stdout } as unknown as ShellTerminal, stdin, stdout, rawModes, output: () => output };
}

describe('runShell on a terminal', () => {
  let server: WebSocketServer;
  let url: string;
  const sockets: WebSocket[] = [];
  const authorizations: Array<string | undefined> = [];

  before(async () => {
    server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    server.on('connection', (socket, request) => {
      sockets.push(socket);
      authorizations.push(request.headers.authorization);
    });
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  it('sets raw mode, sends the size and each resize, relays keys and output, restores the terminal and returns the exit code', async () => {
    const fake = fakeTerminal();
    const exited = runShell({ url, key: 'fk_operator', org: 'acme' }, 'dev_1', fake.terminal);
    const [socket] = (await once(server, 'connection')) as [WebSocket];
    const frames: Array<{ binary: boolean; text: string }> = [];
    socket.on('message', (data, binary) => frames.push({ binary, text: (data as Buffer).toString('latin1') }));
    await waitFor(() => frames.length === 1, () => JSON.stringify(frames));
    assert.deepEqual(fake.rawModes, [true]);
    assert.equal(authorizations.at(-1), 'Bearer fk_operator');

    fake.stdin.write('\x03ls\r');
    fake.stdout.columns = 100;
    fake.stdout.rows = 30;
    fake.stdout.emit('resize');
    await waitFor(() => frames.length === 3, () => JSON.stringify(frames));
    assert.deepEqual(frames, [
      { binary: false, text: '{"type":"resize","cols":120,"rows":40}' },
      { binary: true, text: '\x03ls\r' },
      { binary: false, text: '{"type":"resize","cols":100,"rows":30}' },
    ]);

    socket.send(Buffer.from('file-a  file-b\r\n'));
    socket.send(JSON.stringify({ type: 'exit', code: 0 }));
    assert.equal(await exited, 0);
    assert.equal(fake.output(), 'file-a  file-b\r\n');
    assert.deepEqual(fake.rawModes, [true, false], 'the terminal is back in cooked mode');
    assert.equal(fake.stdout.listenerCount('resize'), 0);
  });

  it('a shell closed without an exit message is an error that gives the reason', async () => {
    const fake = fakeTerminal();
    const exited = runShell({ url, key: 'fk_operator', org: 'acme' }, 'dev_1', fake.terminal);
    const [socket] = (await once(server, 'connection')) as [WebSocket];
    socket.close(4001, 'device did not attach');
    await assert.rejects(exited, { name: 'ApiError', message: 'The shell closed: device did not attach (WebSocket close 4001)' });
    assert.deepEqual(fake.rawModes, [true, false]);
  });
});
