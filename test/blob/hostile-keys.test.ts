import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { maxBlobKeyLength } from '../../src/blob/checks.ts';
import { FleetError } from '../../src/core/errors.ts';
import { testStoreKinds, type TestBlobStore } from './stores.ts';

/** Names a key that climbs out of the store would write to, checked to stay absent. */
const escapee = `fleetd-hostile-${process.pid}`;

const hostileKeys = [
  '',
  '.',
  '..',
  `../${escapee}`,
  `../../${escapee}`,
  `a/../../../${escapee}`,
  `/tmp/${escapee}`,
  '/etc/passwd',
  'a/./b',
  'a//b',
  'a/',
  '/a',
  'a\\b',
  `..\\..\\${escapee}`,
  'C:\\Windows\\x',
  'a\0b',
  'a\nb',
  'a b',
  'a%2F..%2Fb',
  'ä',
  '.hidden',
  'a/.tmp/x',
  'x'.repeat(maxBlobKeyLength + 1),
  `a/${'b'.repeat(256)}`,
  // Not a string at all, as an untyped caller might pass.
  undefined as unknown as string,
];

const badRequest = (error: unknown) => error instanceof FleetError && error.code === 'bad_request';

for (const { kind, open } of testStoreKinds) {
  describe(`${kind} blob store with hostile keys`, () => {
    let test: TestBlobStore;
    before(async () => {
      test = await open();
    });
    after(() => test.close());

    it('refuses every hostile key with bad_request, writing nothing', async () => {
      const before = (await readdir(test.dir, { recursive: true })).sort();
      for (const key of hostileKeys) {
        const shown = JSON.stringify(key)?.slice(0, 40);
        await assert.rejects(test.store.put(key, Buffer.from('x')), badRequest, `put ${shown}`);
        await assert.rejects(test.store.putStream(key, Readable.from([Buffer.from('x')])), badRequest, `putStream ${shown}`);
        await assert.rejects(test.store.get(key), badRequest, `get ${shown}`);
        await assert.rejects(test.store.getStream(key), badRequest, `getStream ${shown}`);
        await assert.rejects(test.store.getStream(key, { start: 0 }), badRequest, `getStream range ${shown}`);
        await assert.rejects(test.store.stat(key), badRequest, `stat ${shown}`);
        await assert.rejects(test.store.delete(key), badRequest, `delete ${shown}`);
      }
      assert.deepEqual((await readdir(test.dir, { recursive: true })).sort(), before);
      for (const folder of [test.dir, dirname(test.dir), dirname(dirname(test.dir)), '/tmp']) {
        assert.equal(existsSync(join(folder, escapee)), false, folder);
      }
    });

    it('accepts keys at the edges of what is allowed', async () => {
      // s3rver keeps an object as files named after the key's last segment plus `._S3rver_metadata.json`.
      const longestSegment = kind === 'local' ? 255 : 255 - '._S3rver_metadata.json'.length;
      const keys = ['a', 'a..b', 'a.', '_x', '-x', 'A-Z_0.9/x-y', `${'x'.repeat(250)}/${'y'.repeat(250)}/${'z'.repeat(maxBlobKeyLength - 502)}`, `a/${'b'.repeat(longestSegment)}`];
      for (const key of keys) {
        await test.store.put(key, Buffer.from(key));
        assert.equal((await test.store.get(key))?.toString(), key);
        await test.store.delete(key);
      }
    });
  });
}
