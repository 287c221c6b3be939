import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { freePort } from '../helpers/process.ts';
import { request, type TestServer } from '../helpers/server.ts';
import { type ClientRunner, useClientServer, describeRun } from './client-run.ts';

/**
 * Where the client commands take their server's URL and key from, and how refusals read, with
 * `bin/fleetd.js` run against a real server (SQLite).
 */

let server: TestServer;
let cli: ClientRunner;
useClientServer((started) => ({ server, cli } = started));

async function createDevice(name: string): Promise<void> {
  const made = await request(server.url, 'POST', `/api/orgs/${server.admin.orgId}/devices`, { token: server.admin.token, body: { name } });
  assert.equal(made.status, 201, JSON.stringify(made.body));
}

describe('connection settings', () => {
  let closedUrl: string;
  let configFile: string;

  before(async () => {
    closedUrl = `http://127.0.0.1:${await freePort()}`;
    mkdirSync(join(cli.home, '.config', 'fleetd'), { recursive: true });
    configFile = join(cli.home, '.config', 'fleetd', 'client.yaml');
  });

  it('without a URL or key, exits 2 naming the flag, the variable and the config file for each', async () => {
    const run = await cli.bare(['devices', 'list']);
    assert.equal(run.code, 2, describeRun(run));
    assert.match(run.stderr, /^fleetd: No server url and key: give --url, FLEETD_URL, or url: in \S+client\.yaml; --key, FLEETD_KEY, or key: in \S+client\.yaml\n$/);
    const keyOnly = await cli.bare(['devices', 'list', '--url', server.url]);
    assert.equal(keyOnly.code, 2, describeRun(keyOnly));
    assert.match(keyOnly.stderr, /No server key: give --key, FLEETD_KEY, or key: in /);
  });

  it('reads ~/.config/fleetd/client.yaml; the environment wins over it, and flags over the environment', async () => {
    await createDevice('settings-probe');
    writeFileSync(configFile, `url: ${server.url}\nkey: ${cli.key}\norg: default\n`);
    const fromFile = await cli.bare(['devices', 'list', '--json']);
    assert.equal(fromFile.code, 0, describeRun(fromFile));
    assert.ok((JSON.parse(fromFile.stdout) as Array<{ name: string }>).some((d) => d.name === 'settings-probe'));

    writeFileSync(configFile, `url: ${closedUrl}\nkey: fk_wrong\norg: nowhere\n`);
    const runs = Promise.all([
      cli.bare(['devices', 'list'], { env: { FLEETD_URL: server.url, FLEETD_KEY: cli.key, FLEETD_ORG: 'default' } }),
      cli.bare(['devices', 'list']),
      cli.bare(['devices', 'list', '--url', server.url, '--key', cli.key, '--org', server.admin.orgId], { env: { FLEETD_URL: closedUrl, FLEETD_KEY: 'fk_wrong', FLEETD_ORG: 'nowhere' } }),
      cli.bare(['devices', 'list', '--url', server.url, '--key', cli.key], { env: { FLEETD_ORG: 'nowhere' } }),
    ]);
    // The other tests give their settings as flags; the file would only be in their way.
    const [envOverFile, fileAlone, flagOverEnv, envAlone] = await runs.finally(() => rmSync(configFile));
    assert.equal(envOverFile.code, 0, describeRun(envOverFile));
    assert.match(envOverFile.stdout, /settings-probe/);
    assert.equal(fileAlone.code, 1, describeRun(fileAlone));
    assert.equal(fileAlone.stderr, `fleetd: Cannot reach the server at ${closedUrl}: ECONNREFUSED\n`);
    assert.equal(flagOverEnv.code, 0, describeRun(flagOverEnv));
    assert.match(flagOverEnv.stdout, /settings-probe/);
    assert.equal(envAlone.code, 1, describeRun(envAlone));
    assert.match(envAlone.stderr, /^fleetd: Organization not found \(HTTP 404 not_found\)\n$/);
  });

  it('--client-config names another file; a broken one is a usage error', async () => {
    const own = join(cli.home, 'elsewhere.yaml');
    writeFileSync(own, `url: ${server.url}/\nkey: ${cli.key}\n`);
    const bad = join(cli.home, 'bad.yaml');
    writeFileSync(bad, 'url: [1, 2]\n');
    const unknown = join(cli.home, 'unknown.yaml');
    writeFileSync(unknown, 'server: x\n');
    const [good, broken, unknownKey, missing] = await Promise.all([
      cli.bare(['devices', 'list', '--client-config', own]),
      cli.bare(['devices', 'list', '--client-config', bad]),
      cli.bare(['devices', 'list', '--client-config', unknown]),
      cli.bare(['devices', 'list', '--client-config', join(cli.home, 'missing.yaml')]),
    ]);
    assert.equal(good.code, 0, describeRun(good));
    assert.match(good.stdout, /settings-probe/);
    assert.equal(broken.code, 2, describeRun(broken));
    assert.match(broken.stderr, /url in the client config file \S+bad\.yaml must be text/);
    assert.equal(unknownKey.code, 2, describeRun(unknownKey));
    assert.match(unknownKey.stderr, /unknown key "server": only url, key and org/);
    assert.equal(missing.code, 2, describeRun(missing));
    assert.match(missing.stderr, /Cannot read the client config file \S+missing\.yaml: ENOENT/);
  });

  it('a bad key is refused with the server’s message, a hint and exit 1; a URL that is not one exits 2', async () => {
    const [badKey, notUrl] = await Promise.all([
      cli.bare(['devices', 'list', '--url', server.url, '--key', 'fk_notakey_000000000000000000000000']),
      cli.bare(['devices', 'list', '--url', 'fleetd.example', '--key', cli.key]),
    ]);
    assert.equal(badKey.code, 1, describeRun(badKey));
    assert.match(badKey.stderr, /^fleetd: .+: check the key \(--key, FLEETD_KEY or the client config file\) \(HTTP 401 unauthenticated\)\n$/);
    assert.equal(badKey.stdout, '');
    assert.equal(notUrl.code, 2, describeRun(notUrl));
    assert.match(notUrl.stderr, /The server URL "fleetd\.example" is not a URL/);
  });

  it('a route the server does not have is said plainly, not as a stack', async () => {
    // A URL with a path before /api: every route is unknown there, as on a fleetd without this command.
    const run = await cli.bare(['devices', 'list', '--url', `${server.url}/elsewhere`, '--key', cli.key]);
    assert.equal(run.code, 1, describeRun(run));
    assert.equal(run.stderr, 'fleetd: No route GET /elsewhere/api/orgs/default/devices: the server does not offer this (is it an older fleetd?) (HTTP 404 not_found)\n');
  });
});
