import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newId } from '../../src/core/ids.ts';
import { constantTimeEqual, hashPassword, newApiKey, parseApiKey, sha256, verifyPassword } from '../../src/core/secrets.ts';

describe('API keys', () => {
  it('are fk_<prefix>_<secret>, and only the hash of the secret is kept', () => {
    const { key, prefix, secretHash } = newApiKey();
    assert.match(key, /^fk_[0-9a-z]{12}_[0-9a-z]{40}$/);
    const parsed = parseApiKey(key);
    assert.equal(parsed?.prefix, prefix);
    assert.equal(sha256(parsed!.secret), secretHash);
    assert.ok(!secretHash.includes(parsed!.secret));
  });

  it('do not repeat', () => {
    const keys = new Set(Array.from({ length: 1000 }, () => newApiKey().key));
    assert.equal(keys.size, 1000);
  });

  it('refuse anything that is not of their form', () => {
    for (const text of ['', 'fk_', 'fk_abc_def', `fk_${'A'.repeat(12)}_${'a'.repeat(40)}`, `fk_${'a'.repeat(12)}_${'a'.repeat(41)}`, `xx_${'a'.repeat(12)}_${'a'.repeat(40)}`]) {
      assert.equal(parseApiKey(text), undefined, text);
    }
  });
});

describe('secrets', () => {
  it('compare equal and unequal texts of any length', () => {
    assert.equal(constantTimeEqual('abc', 'abc'), true);
    assert.equal(constantTimeEqual('abc', 'abd'), false);
    assert.equal(constantTimeEqual('abc', 'abcd'), false);
    assert.equal(constantTimeEqual('', ''), true);
  });

  it('hash passwords with argon2id and verify them', async () => {
    const hash = await hashPassword('correct horse');
    assert.match(hash, /^\$argon2id\$/);
    assert.equal(await verifyPassword(hash, 'correct horse'), true);
    assert.equal(await verifyPassword(hash, 'wrong horse'), false);
    assert.equal(await verifyPassword('not a hash', 'x'), false);
  });
});

describe('ids', () => {
  it('carry their prefix and sort by creation time', () => {
    const earlier = newId('org', 1_700_000_000_000);
    const later = newId('org', 1_700_000_000_001);
    assert.match(earlier, /^org_[0-9a-z]{26}$/);
    assert.ok(earlier < later);
  });
});
