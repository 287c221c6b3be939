import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openStore } from '../../src/store/store.ts';
import { freePort, killChildren, spawnFleetd, waitFor, type Spawned } from '../helpers/process.ts';
import { login, request } from '../helpers/server.ts';
import { TestClient } from '../adapters/rrduino/client.ts';

/**
 * `fleetd rrduino add|list|remove` as an operator runs them on the server's machine, and a client
 * added so talking to `fleetd serve`: rrduino's `server.py -c NAME -k KEY`, then the Arduino.
 */

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let dir: string;
let settings: string[];

async function fleetd(args: string[], env?: NodeJS.ProcessEnv): Promise<Run> {
  const run = spawnFleetd([...args, ...settings], { cwd: dir, env });
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 30_000);
  const { code } = await run.exited;
  clearTimeout(timer);
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

const describeRun = (run: Run) => `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;

async function profileRow(clientId: string) {
  const store = openStore(`sqlite:${join(dir, 'data', 'fleetd.db')}`);
  try {
    return await store.db.selectFrom('rrduino_profiles').selectAll().where('client_id', '=', clientId).executeTakeFirst();
  } finally {
    await store.close();
  }
}

const email = 'root@example.com';
const password = 'root-password-1';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleetd-cli-rrduino-'));
  settings = ['--data', join(dir, 'data')];
});
after(() => {
  killChildren();
  rmSync(dir, { recursive: true, force: true });
});

describe('fleetd rrduino', () => {
  it('add makes the client, its device and a sequence per DS, and says where its readings go', async () => {
    const admin = await fleetd(['admin', 'create', email], { FLEETD_ADMIN_PASSWORD: password });
    assert.equal(admin.code, 0, describeRun(admin));
    const run = await fleetd(['rrduino', 'add', 'fridge', '--key', 'secret123', '--rrd', '--step 60', '--rrd', 'DS:temperature:GAUGE:120:-50:110', '--rrd', 'RRA:AVERAGE:0.5:1:1440']);
    assert.equal(run.code, 0, describeRun(run));
    assert.match(run.stdout, /^Added rrduino client fridge \(device dev_\S+\); its readings go to \/default\/fridge\/temperature\.\n$/);
    const row = await profileRow('fridge');
    assert.equal(row?.master_key, createHash('sha256').update('secret123').digest('hex'));
    assert.deepEqual(JSON.parse(row.rrd_arguments), ['--step', '60', 'DS:temperature:GAUGE:120:-50:110', 'RRA:AVERAGE:0.5:1:1440']);
    assert.ok(!run.stdout.includes('secret123'));
  });

  it("add --profile takes rrduino's profile file, --key overriding its key", async () => {
    const file = join(dir, 'cellar.json');
    writeFileSync(file, JSON.stringify({ key: 'from-file', handler: 'RRDuinoHandler', handler_options: { path: '/var/lib/rrduino/cellar.rrd', create: ['DS:t:GAUGE:600:U:U', 'RRA:LAST:0.5:1:10'], update: 'N:{temp}' } }));
    const run = await fleetd(['rrduino', 'add', 'cellar', '--profile', file, '--key', 'own-key']);
    assert.equal(run.code, 0, describeRun(run));
    assert.match(run.stdout, /its readings go to \/default\/cellar\/t\./);
    const row = await profileRow('cellar');
    assert.equal(row?.update_template, 'N:{temp}');
    assert.deepEqual(JSON.parse(row.rrd_arguments), ['DS:t:GAUGE:600:U:U', 'RRA:LAST:0.5:1:10']);
    assert.equal(row.master_key, createHash('sha256').update('own-key').digest('hex'));
  });

  it('add refuses bad input with exit 2 and a message, storing nothing', async () => {
    // Few processes: each start of the CLI costs seconds of CPU. The HTTP tests try the rest of the bad input.
    const runs = await Promise.all([
      fleetd(['rrduino', 'add', 'fridge', '--key', 'again']),
      fleetd(['rrduino', 'add', 'nokey']),
      fleetd(['rrduino', 'add', 'badrrd', '--key', 'k', '--rrd', 'DS:x:GAUGE']),
      fleetd(['rrduino', 'add', 'elsewhere', '--key', 'k', '--org', 'nowhere']),
    ]);
    const messages = [/exists already/, /needs its key/, /is not DS:name:type:heartbeat:min:max/, /Organization not found/];
    for (const [i, run] of runs.entries()) {
      assert.equal(run.code, 2, describeRun(run));
      assert.match(run.stderr, messages[i]!);
    }
    for (const id of ['nokey', 'badrrd', 'elsewhere']) assert.equal(await profileRow(id), undefined, id);
  });

  it('list shows each client with its device and sequences; remove forgets one', async () => {
    const listed = await fleetd(['rrduino', 'list']);
    assert.equal(listed.code, 0, describeRun(listed));
    assert.deepEqual(
      listed.stdout.trimEnd().split('\n').map((line) => [line.split('\t')[0], line.split('\t')[2]]),
      [['cellar', 't'], ['fridge', 'temperature']],
    );
    const removed = await fleetd(['rrduino', 'remove', 'cellar']);
    assert.equal(removed.code, 0, describeRun(removed));
    assert.equal(removed.stdout, 'Removed rrduino client cellar.\n');
    assert.equal(await profileRow('cellar'), undefined);
  });

  describe('with fleetd serve', () => {
    let serve: Spawned;
    let base: string;
    let rrduinoPort: number;

    before(async () => {
      const port = await freePort();
      rrduinoPort = await freePort();
      base = `http://127.0.0.1:${port}`;
      serve = spawnFleetd(['serve', '--host', '127.0.0.1', '--port', String(port), '--rrduino-host', '127.0.0.1', '--rrduino-port', String(rrduinoPort), ...settings], { cwd: dir });
      await waitFor(() => serve.stderr().includes('fleetd is serving on'), () => serve.stderr() + serve.stdout());
    });
    after(async () => {
      if (serve?.child.exitCode === null) serve.child.kill('SIGTERM');
      await serve?.exited;
    });

    it('logs the rrduino port, and a client added with the CLI stores its readings there', async () => {
      // The JSON log line may reach stdout a moment after the line on stderr that said the server is up.
      await waitFor(() => new RegExp(`"rrduinoPort":${rrduinoPort}`).test(serve.stdout()), () => serve.stdout());
      const client = await TestClient.connect(rrduinoPort);
      try {
        await client.hello('fridge', 'secret123');
        client.update([['temperature', '4.25']]);
        client.update([['temperature', '4.50']]);
        const { accessToken } = await login(base, email, password);
        let values: number[] = [];
        const end = Date.now() + 10_000;
        while (values.length < 2 && Date.now() < end) {
          const raw = await request(base, 'GET', '/api/series/raw?path=/default/fridge/temperature', { token: accessToken });
          values = raw.status === 200 ? raw.body.values.map((v: { value: number }) => v.value) : [];
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        assert.deepEqual(values, [4.25, 4.5]);
      } finally {
        client.end();
      }
    });
  });
});
