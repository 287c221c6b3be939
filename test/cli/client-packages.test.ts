import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { type TestServer } from '../helpers/server.ts';
import { type ClientRunner, useClientServer, describeRun, tableRows } from './client-run.ts';

/** `fleetd packages` as `bin/fleetd.js` against a real server (SQLite, local blob storage). */

let server: TestServer;
let cli: ClientRunner;
useClientServer((started) => ({ server, cli } = started));

interface Package {
  id: string;
  version: string;
  deviceType: string;
  metadata: Record<string, string>;
  size: number;
  sha256: string;
}

describe('fleetd packages', () => {
  const size = 6 * 1024 * 1024 + 123;
  let file: string;
  let sha256: string;

  before(() => {
    const content = randomBytes(size);
    file = join(cli.home, 'firmware-2.0.bin');
    writeFileSync(file, content);
    sha256 = createHash('sha256').update(content).digest('hex');
  });

  it('upload streams a multi-MB file with its metadata; the server stores exactly its bytes', async () => {
    const run = await cli.run(['packages', 'upload', file, '--version', '2.0', '--device-type', 'pro-1', '--metadata', 'channel=stable', '--metadata', 'requires:version=1.0', '--metadata', 'note=a=b']);
    assert.equal(run.code, 0, describeRun(run));
    assert.match(run.stdout, new RegExp(`^Uploaded package pkg_\\w+: version 2\\.0 for pro-1, 6\\.0 MiB, sha256 ${sha256}\\.\\n$`));
    // Standard error is no terminal here: no bar, one line at the end.
    assert.match(run.stderr, /^Uploading firmware-2\.0\.bin: 6\.0 MiB in \d+\.\d s \(\d+\.\d \w+\/s\)\n$/);

    const [stored] = await cli.json<Package[]>(['packages', 'list', '--version', '2.0']);
    assert.deepEqual(
      { version: stored!.version, deviceType: stored!.deviceType, size: stored!.size, sha256: stored!.sha256, metadata: stored!.metadata },
      { version: '2.0', deviceType: 'pro-1', size, sha256, metadata: { channel: 'stable', 'requires:version': '1.0', note: 'a=b' } },
    );
    const content = await fetch(`${server.url}/api/orgs/default/packages/${stored!.id}/content`, { headers: { authorization: `Bearer ${cli.key}` } });
    assert.equal(content.status, 200);
    assert.equal(createHash('sha256').update(Buffer.from(await content.arrayBuffer())).digest('hex'), sha256);
  });

  it('upload --json prints the package; list prints a table and filters; delete removes one', async () => {
    const small = join(cli.home, 'small.bin');
    writeFileSync(small, 'tiny update');
    const uploaded = await cli.json<Package>(['packages', 'upload', small, '--version', '2.1', '--device-type', 'plus-1']);
    assert.equal(uploaded.size, 11);
    assert.equal(uploaded.sha256, createHash('sha256').update('tiny update').digest('hex'));

    const rows = tableRows(await cli.ok(['packages', 'list']));
    assert.deepEqual(rows[0], ['ID', 'VERSION', 'DEVICE TYPE', 'SIZE', 'SHA256', 'SIGNED', 'CREATED']);
    assert.deepEqual(rows.slice(1).map((row) => [row[1], row[2], row[3], row[5]]), [
      ['2.0', 'pro-1', '6.0 MiB', 'no'],
      ['2.1', 'plus-1', '11 B', 'no'],
    ]);
    assert.deepEqual((await cli.json<Package[]>(['packages', 'list', '--device-type', 'plus-1'])).map((p) => p.id), [uploaded.id]);

    assert.equal(await cli.ok(['packages', 'delete', uploaded.id]), `Deleted package ${uploaded.id}.\n`);
    assert.deepEqual(await cli.json(['packages', 'list', '--device-type', 'plus-1']), []);
    const again = await cli.run(['packages', 'delete', uploaded.id]);
    assert.equal(again.code, 1, describeRun(again));
    assert.match(again.stderr, /^fleetd: .*not found \(HTTP 404 not_found\)\n$/);
  });

  it('refuses bad usage with exit 2, and a refused upload (bad signature, bad key) with the server’s message and exit 1', async () => {
    const runs = await Promise.all([
      cli.run(['packages', 'upload', join(cli.home, 'missing.bin'), '--version', '1', '--device-type', 't']),
      cli.run(['packages', 'upload', file, '--device-type', 't']),
      cli.run(['packages', 'upload', file, '--version', '1', '--device-type', 't', '--metadata', 'novalue']),
      cli.run(['packages', 'upload', file, '--version', '3.0', '--device-type', 'pro-1', '--signature', Buffer.alloc(64).toString('base64')]),
      // Refused before the server reads the file: the command ends at once rather than send the rest.
      cli.bare(['packages', 'upload', file, '--version', '3.0', '--device-type', 'pro-1', '--url', server.url, '--key', 'fk_notakey_000000000000000000000000']),
    ]);
    const expected: Array<[number, RegExp]> = [
      [2, /missing\.bin is not a file/],
      [2, /required option '--version <version>' not specified/],
      [2, /--metadata "novalue" must be key=value/],
      [1, /^fleetd: .*(signature|signing key).* \(HTTP 400 \w+\)\n$/],
      [1, /^fleetd: .+: check the key \(--key, FLEETD_KEY or the client config file\) \(HTTP 401 unauthenticated\)\n$/],
    ];
    for (const [i, run] of runs.entries()) {
      assert.equal(run.code, expected[i]![0], describeRun(run));
      assert.match(run.stderr, expected[i]![1]);
    }
    assert.deepEqual(await cli.json(['packages', 'list', '--version', '3.0']), [], 'the refused upload left nothing');
  });
});
