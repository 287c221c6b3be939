import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.ts';
import { describeRun, fleetd, tempDir } from './program-run.ts';

const packageVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The commands that talk to a running server instead of running on the server's configuration. */
const clientCommands = ['devices', 'packages', 'groups', 'deployments'];

/** Every command of the CLI with its path of names, the program first. */
function commandPaths(command: Command, path: string[] = []): Array<{ path: string[]; command: Command }> {
  return [{ path, command }, ...command.commands.flatMap((sub) => commandPaths(sub, [...path, sub.name()]))];
}

describe('fleetd (the program)', () => {
  let cwd: string;
  before(() => {
    cwd = tempDir();
  });

  // Some forty starts of the program, two CPU seconds each: more than the default time of a test on two cores.
  it('--help of the program and of every command lists its options and subcommands, and exits 0', { timeout: 300_000 }, async () => {
    const all = commandPaths(await buildProgram());
    const names = all.map((c) => c.path.join(' '));
    for (const name of ['', 'serve', 'migrate', 'config', 'admin', 'admin create', 'devices list', 'packages upload', 'groups policy', 'deployments status']) {
      assert.ok(names.includes(name), `fleetd ${name} is a command`);
    }
    // Three at a time: each start costs a couple of CPU seconds, and all at once on two cores would near the kill timer.
    const checkHelp = async ({ path, command }: (typeof all)[number]) => {
      const run = await fleetd([...path, '--help'], { cwd });
      const context = `fleetd ${path.join(' ')} --help: ${describeRun(run)}`;
      assert.equal(run.code, 0, context);
      assert.ok(run.stdout.startsWith(`Usage: fleetd ${path.map((p) => `${p} `).join('')}`), context);
      assert.ok(run.stdout.includes('--help'), context);
      for (const option of command.options) assert.ok(run.stdout.includes(option.flags), `lists ${option.flags}: ${context}`);
      for (const sub of command.commands) assert.ok(run.stdout.includes(sub.name()), `lists ${sub.name()}: ${context}`);
      if (path.length > 0 && command.commands.length === 0) {
        // A client command takes the connection to a server; a command running on the configuration takes every key as a flag.
        const flags = clientCommands.includes(path[0]!)
          ? ['--url <url>', '--key <key>', '--org <org>', '--client-config <file>']
          : ['--config <file>', '--port <value>', '--database <value>', '--oidc-role-map <value>'];
        for (const flag of flags) assert.ok(run.stdout.includes(flag), `lists ${flag}: ${context}`);
      }
    };
    for (let i = 0; i < all.length; i += 3) await Promise.all(all.slice(i, i + 3).map(checkHelp));
  });

  it('--version prints the version of the package', async () => {
    const run = await fleetd(['--version'], { cwd });
    assert.equal(run.code, 0, describeRun(run));
    assert.equal(run.stdout.trim(), packageVersion);
  });

  it('an unknown command exits non-zero and says so', async () => {
    const run = await fleetd(['bogus'], { cwd });
    assert.notEqual(run.code, 0, describeRun(run));
    assert.match(run.stderr, /unknown command 'bogus'/);
  });
});
