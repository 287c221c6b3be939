import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changedFields, maxStateDepth, mergeState, stateDelta, type StateDocument, type StateValue } from '../../src/core/device-state.ts';
import { FleetError } from '../../src/core/errors.ts';

describe('mergeState', () => {
  it('merges objects field by field and replaces everything else', () => {
    const base = { 'switch:0': { output: false, apower: 0, aenergy: { total: 1.5, by_minute: [1, 2, 3] } }, sys: { uptime: 10 } };
    const merged = mergeState(base, { 'switch:0': { output: true, aenergy: { by_minute: [4] } } });
    assert.deepEqual(merged, { 'switch:0': { output: true, apower: 0, aenergy: { total: 1.5, by_minute: [4] } }, sys: { uptime: 10 } });
    assert.equal(base['switch:0'].output, false, 'the base document is not changed');
  });

  it('removes a field given null, and an object left empty', () => {
    assert.deepEqual(mergeState({ a: 1, b: { c: 2 } }, { a: null, b: { c: null } }), {});
  });

  it('replaces a scalar with an object and an object with a scalar', () => {
    assert.deepEqual(mergeState({ a: 1, b: { c: 1 } }, { a: { x: 1 }, b: 2 }), { a: { x: 1 }, b: 2 });
  });
});

describe('stateDelta', () => {
  it('lists what desired asks that reported lacks, deeply', () => {
    const desired = { 'switch:0': { output: true }, led: { mode: 'on', colors: [1, 2] }, name: 'kitchen' };
    const reported = { 'switch:0': { output: false, apower: 3 }, led: { mode: 'on', colors: [1, 2] }, name: 'kitchen' };
    assert.deepEqual(stateDelta(desired, reported), { 'switch:0': { output: true } });
  });

  it('is undefined once the device reports what was desired', () => {
    assert.equal(stateDelta({ a: { b: [1, { c: 2 }] } }, { a: { b: [1, { c: 2 }] }, extra: 1 }), undefined);
  });
});

describe('changedFields', () => {
  it('gives only what changed, with removed fields as null', () => {
    const before = { 'switch:0': { output: false, apower: 5 }, wifi: { rssi: -60 }, gone: 1 };
    const after = { 'switch:0': { output: true, apower: 5 }, wifi: { rssi: -60 } };
    assert.deepEqual(changedFields(before, after), { 'switch:0': { output: true }, gone: null });
    assert.equal(changedFields(after, after), undefined);
  });
});

describe('state depth', () => {
  const nested = (levels: number): StateDocument => {
    let document: StateDocument = { leaf: 1 };
    for (let i = 1; i < levels; i++) document = { next: document };
    return document;
  };
  const nestedList = (levels: number): StateDocument => {
    let value: StateValue = 1;
    for (let i = 1; i < levels; i++) value = [value];
    return { list: value };
  };

  it(`merges a patch nested ${maxStateDepth} levels deep`, () => {
    assert.deepEqual(mergeState({}, nested(maxStateDepth)), nested(maxStateDepth));
    assert.deepEqual(mergeState({}, nestedList(maxStateDepth)), nestedList(maxStateDepth));
  });

  it('refuses a deeper patch, in objects or lists, with validation_failed instead of exhausting the stack', () => {
    for (const patch of [nested(maxStateDepth + 1), nested(100_000), nestedList(maxStateDepth + 1), nestedList(100_000)]) {
      assert.throws(() => mergeState({}, patch), (error: unknown) => error instanceof FleetError && error.code === 'validation_failed');
    }
  });
});
