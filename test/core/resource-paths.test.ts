import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FleetError } from '../../src/core/errors.ts';
import { isValidName, isWithin, parseFullPath, pathChain, resourceTypeCodes, resourceTypeOf, withoutForbidden } from '../../src/core/resource-paths.ts';

describe('resource paths', () => {
  it('accepts names of 1 to 100 characters without /, \\ or control characters, other than . and ..', () => {
    for (const name of ['a', 'temperature', 'a b', 'näme', '日本', '%_*', '...', 'x'.repeat(100), 'a.b', '🌡']) assert.equal(isValidName(name), true, name);
    for (const name of ['', 'x'.repeat(101), '.', '..', 'a/b', 'a\\b', 'a\nb', 'tab\t', 'nul\u0000', 'del\u007f', 'c1\u0085']) assert.equal(isValidName(name), false, JSON.stringify(name));
  });

  it('parses full paths into the organization and the path below it', () => {
    assert.deepEqual(parseFullPath('/acme'), { orgSlug: 'acme', relativePath: '', names: [] });
    assert.deepEqual(parseFullPath('/acme/'), { orgSlug: 'acme', relativePath: '', names: [] });
    assert.deepEqual(parseFullPath('/acme/a/b c'), { orgSlug: 'acme', relativePath: '/a/b c', names: ['a', 'b c'] });
    assert.deepEqual(parseFullPath('/acme/a/b/'), { orgSlug: 'acme', relativePath: '/a/b', names: ['a', 'b'] });
    for (const bad of ['', '/', 'acme/a', '/acme//b', '/acme/a/../b', '/acme/./b', '//a']) {
      assert.throws(() => parseFullPath(bad), (error: unknown) => error instanceof FleetError && error.code === 'bad_request', bad);
    }
  });

  it('lists the chain of ancestors root first, and knows what lies within what', () => {
    assert.deepEqual(pathChain(''), ['']);
    assert.deepEqual(pathChain('/a/b/c'), ['', '/a', '/a/b', '/a/b/c']);
    assert.equal(isWithin('/a/b', '/a'), true);
    assert.equal(isWithin('/a', '/a'), true);
    assert.equal(isWithin('/ab', '/a'), false);
    assert.equal(isWithin('/a', '/a/b'), false);
  });

  it("maps rhizo's type numbers both ways", () => {
    for (const [type, code] of Object.entries(resourceTypeCodes)) assert.equal(resourceTypeOf(code), type);
    assert.throws(() => resourceTypeOf(15), FleetError);
  });

  it('makes names out of text that has forbidden characters', () => {
    assert.equal(withoutForbidden('a/b\\c\nd'), 'a_b_c_d');
    assert.equal(isValidName(withoutForbidden('x/\u0001y')), true);
  });
});
