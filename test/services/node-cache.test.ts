import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Principal } from '../../src/core/access.ts';
import { NodeCache } from '../../src/services/node-cache.ts';

const alice: Principal = { kind: 'user', userId: 'usr_alice', systemAdmin: false, orgRoles: new Map(), via: 'token' };

describe('NodeCache', () => {
  it('recalls a principal until its TTL passes', () => {
    const cache = new NodeCache<Principal>(1000);
    cache.remember('t', alice, cache.generation);
    assert.equal(cache.recall('t'), alice);
    assert.equal(cache.recall('t', Date.now() + 1001), undefined);
  });

  it('never outlives the credential it remembers', () => {
    const cache = new NodeCache<Principal>(60_000);
    const expiresAt = Date.now() + 100;
    cache.remember('t', alice, cache.generation, expiresAt);
    assert.equal(cache.recall('t', expiresAt - 1), alice);
    assert.equal(cache.recall('t', expiresAt), undefined);
  });

  it('forgets everything on invalidation', () => {
    const cache = new NodeCache<Principal>(1000);
    cache.remember('t', alice, cache.generation);
    cache.invalidate();
    assert.equal(cache.recall('t'), undefined);
  });

  it('does not keep an answer looked up before a change committed during the lookup', () => {
    const cache = new NodeCache<Principal>(1000);
    const startedIn = cache.generation;
    cache.invalidate();
    cache.remember('t', alice, startedIn);
    assert.equal(cache.recall('t'), undefined);
  });

  it('keeps nothing when turned off (TTL 0)', () => {
    const cache = new NodeCache<Principal>(0);
    cache.remember('t', alice, cache.generation);
    assert.equal(cache.recall('t'), undefined);
  });

  it('stays within its size, dropping the oldest first', () => {
    const cache = new NodeCache<Principal>(1000, 2);
    for (const token of ['a', 'b', 'c']) cache.remember(token, alice, cache.generation);
    assert.equal(cache.recall('a'), undefined);
    assert.equal(cache.recall('b'), alice);
    assert.equal(cache.recall('c'), alice);
  });
});
