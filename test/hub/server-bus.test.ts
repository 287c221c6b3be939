import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FleetError } from '../../src/core/errors.ts';
import { startNode } from '../helpers/server.ts';
import { busBackends, inbox, natsTestUrl, uniquePrefix } from './buses.ts';

const buses = await busBackends();

describe('the server and its bus', () => {
  let data: string;
  let databaseUrl: string;
  before(() => {
    data = mkdtempSync(join(tmpdir(), 'fleetd-data-'));
    databaseUrl = `sqlite:${join(data, 'fleetd.db')}`;
  });
  after(() => {
    rmSync(data, { recursive: true, force: true });
  });

  for (const backend of buses) {
    it(`opens the ${backend.name} bus at start and closes it on shutdown`, { skip: backend.skip }, async () => {
      const server = await startNode(databaseUrl, data, backend.name === 'nats' ? { bus: natsTestUrl } : {});
      assert.equal(server.bus.kind, backend.name);
      const subject = `${uniquePrefix()}.hello`;
      const received = inbox();
      await server.bus.subscribe(subject, received.handler);
      server.bus.publish(subject, 'world');
      assert.equal((await received.until(1))[0]!.payload, 'world');
      await server.close();
      assert.throws(() => server.bus.publish(subject, 'late'), (error) => error instanceof FleetError && error.code === 'unavailable');
    });
  }

  it('does not start when NATS is unreachable, and says where it looked', async () => {
    // Nothing listens on port 1 of this machine: the connection is refused at once.
    await assert.rejects(startNode(databaseUrl, data, { bus: 'nats://127.0.0.1:1' }), (error) => {
      assert.ok(error instanceof FleetError && error.code === 'unavailable', String(error));
      assert.ok(error.message.includes('NATS is not reachable at nats://127.0.0.1:1'), error.message);
      return true;
    });
  });
});
