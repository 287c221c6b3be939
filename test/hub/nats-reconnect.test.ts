import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { FleetError } from '../../src/core/errors.ts';
import { openBus } from '../../src/hub/open.ts';
import { inbox, uniquePrefix } from './buses.ts';
import { recordingLogger } from '../helpers/logger.ts';

const natsServerBinary = process.env.FLEETD_TEST_NATS_SERVER ?? '/usr/sbin/nats-server';
const skip = existsSync(natsServerBinary)
  ? undefined
  : `the nats-server program is not at ${natsServerBinary}; install it (apt-get install nats-server) or set FLEETD_TEST_NATS_SERVER`;

/** A free TCP port of 127.0.0.1 (free a moment ago: nothing else here takes ports on its own). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A NATS server of this test alone, so it can be stopped and started again without disturbing anyone. */
async function startNatsServer(port: number): Promise<ChildProcess> {
  const server = spawn(natsServerBinary, ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let log = '';
    server.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('Server is ready')) resolve();
    });
    server.once('exit', (code) => reject(new Error(`nats-server exited (${String(code)}): ${log}`)));
  });
  return server;
}

async function stop(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGKILL');
  await exited;
}

/** Resolves once `entries` holds one whose message is `msg`; fails after `ms`. */
async function logged(entries: Array<Record<string, unknown>>, msg: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!entries.some((e) => e.msg === msg)) {
    if (Date.now() > deadline) assert.fail(`"${msg}" was not logged: ${JSON.stringify(entries)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('bus: NATS reconnection', { skip }, () => {
  const servers: ChildProcess[] = [];
  after(async () => {
    for (const server of servers) await stop(server);
  });

  it('logs losing and regaining the server, refuses to send meanwhile, and keeps subscriptions', async () => {
    const port = await freePort();
    servers.push(await startNatsServer(port));
    const recorded = recordingLogger('info');
    const bus = await openBus(`nats://127.0.0.1:${port}`, recorded.logger);
    try {
      const subject = `${uniquePrefix()}.events`;
      const received = inbox();
      await bus.subscribe(subject, received.handler);
      bus.publish(subject, 'before');
      await received.until(1);

      await stop(servers[0]!);
      await logged(recorded.entries, 'NATS disconnect');
      // The client would drop it on reconnecting, so the bus says so rather than pretend.
      assert.throws(() => bus.publish(subject, 'while away'), (error) => error instanceof FleetError && (error.details as { reason: string }).reason === 'disconnected');
      await assert.rejects(bus.request(subject, 'while away', { timeoutMs: 1000 }), (error) => error instanceof FleetError && error.code === 'unavailable');
      const lateSubject = `${uniquePrefix()}.late`;
      const late = inbox();
      await bus.subscribe(lateSubject, late.handler);

      servers.push(await startNatsServer(port));
      await logged(recorded.entries, 'NATS reconnect');
      bus.publish(subject, 'after');
      bus.publish(lateSubject, 'subscribed while away');
      assert.deepEqual((await received.until(2)).map((m) => m.payload), ['before', 'after']);
      assert.deepEqual((await late.until(1)).map((m) => m.payload), ['subscribed while away']);
      assert.equal(recorded.entries.find((e) => e.msg === 'NATS disconnect')!.level, 40, 'a lost server is a warning');
    } finally {
      await bus.close();
    }
  });

  it('closes at once while the server is gone', async () => {
    const port = await freePort();
    const server = await startNatsServer(port);
    servers.push(server);
    const recorded = recordingLogger('info');
    const bus = await openBus(`nats://127.0.0.1:${port}`, recorded.logger);
    await bus.subscribe(`${uniquePrefix()}.events`, () => undefined);
    await stop(server);
    await logged(recorded.entries, 'NATS disconnect');
    const started = Date.now();
    await bus.close();
    assert.ok(Date.now() - started < 1000, `closed in ${Date.now() - started} ms`);
    assert.throws(() => bus.publish('a.b', 1), (error) => error instanceof FleetError && (error.details as { reason: string }).reason === 'closed');
  });
});
