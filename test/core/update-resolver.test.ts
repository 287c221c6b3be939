import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { installableOn, factMap, resolveUpdate, type Facts } from '../../src/core/update-resolver.ts';

/**
 * RDFM's update resolver (rdfm.md §6). Where paths tie, the expected answers are those of RDFM's own
 * resolver.py run with networkx 3.6 on the same packages.
 */

const device = (version: string, metadata: Record<string, string> = {}, deviceType = 'board'): Facts => ({ version, deviceType, metadata });
const full = (version: string, deviceType = 'board'): Facts => ({ version, deviceType, metadata: {} });
const delta = (version: string, requires: Record<string, string>, deviceType = 'board'): Facts => ({
  version,
  deviceType,
  metadata: Object.fromEntries(Object.entries(requires).map(([key, value]) => [`requires:${key}`, value])),
});
const xdelta = 'rdfm.software.supports_xdelta';

interface Case {
  name: string;
  device: Facts;
  packages: Facts[];
  target: string | null;
  /** Index of the package the device gets, or null for none (HTTP 204). */
  expected: number | null;
}

const rdfmExample = [full('v2'), delta('v3', { 'rdfm.software.version': 'v2' })];
const deltaAndFull = [delta('v3', { 'rdfm.software.version': 'v2', [xdelta]: 'true' }), full('v3'), full('v2')];

const cases: Case[] = [
  { name: 'rdfm.md: on v1 towards v3, the full v2 first', device: device('v1'), packages: rdfmExample, target: 'v3', expected: 0 },
  { name: 'rdfm.md: on v2, the delta to v3', device: device('v2'), packages: rdfmExample, target: 'v3', expected: 1 },
  { name: 'a condition may name the version as fleetd does', device: device('v2'), packages: [delta('v3', { version: 'v2' })], target: 'v3', expected: 0 },
  { name: 'and the device type under either name', device: device('v2'), packages: [delta('v3', { deviceType: 'board', 'rdfm.hardware.devtype': 'board' })], target: 'v3', expected: 0 },
  { name: 'the delta when the device supports it and runs its base', device: device('v2', { [xdelta]: 'true' }), packages: deltaAndFull, target: 'v3', expected: 0 },
  { name: 'delta fallback: without the support flag, the full package', device: device('v2'), packages: deltaAndFull, target: 'v3', expected: 1 },
  { name: 'delta fallback: a flag of another value is no flag', device: device('v2', { [xdelta]: 'false' }), packages: deltaAndFull, target: 'v3', expected: 1 },
  { name: 'delta fallback: on another base version, the full package', device: device('v1', { [xdelta]: 'true' }), packages: deltaAndFull, target: 'v3', expected: 1 },
  { name: 'downgrade to an older version', device: device('v3'), packages: [full('v1'), full('v2')], target: 'v1', expected: 0 },
  { name: 'packages of another device type are never given', device: device('v1'), packages: [full('v2', 'other')], target: 'v2', expected: null },
  { name: 'the package of the device type, beside one of another', device: device('v1'), packages: [full('v2', 'other'), full('v2')], target: 'v2', expected: 1 },
  // RDFM answers 0 here: its path goes on from v2 through an edge between the two packages of the other type.
  { name: 'no path through packages of another device type', device: device('v1'), packages: [full('v2'), full('v2', 'other'), full('v3', 'other'), delta('v3', { version: 'v9' })], target: 'v3', expected: null },
  { name: 'a target no package has', device: device('v1'), packages: [full('v2')], target: 'v4', expected: null },
  { name: 'no package at all', device: device('v1'), packages: [], target: 'v2', expected: null },
  { name: 'no target: the policy says no update', device: device('v1'), packages: [full('v2')], target: null, expected: null },
  { name: 'no path: a delta from a version nobody has', device: device('v1'), packages: [delta('v3', { version: 'v2' })], target: 'v3', expected: null },
  { name: 'zero hops: the device runs the target', device: device('v3'), packages: [full('v3'), full('v2')], target: 'v3', expected: null },
  { name: 'ties: the lowest package index', device: device('v1'), packages: [full('v2'), full('v3'), full('v3')], target: 'v3', expected: 1 },
  {
    // The package on v1 says it has the flag, so an edge v1 → v3 labelled 0 exists too: the device's own edge, inserted first, wins.
    name: "ties: the device's own edges before package-to-package edges",
    device: device('v1'),
    packages: [delta('v3', { flag: 'yes' }), { version: 'v1', deviceType: 'board', metadata: { flag: 'yes' } }, full('v3')],
    target: 'v3',
    expected: 2,
  },
  { name: 'the shortest path, not the first listed', device: device('v1'), packages: [full('v2'), delta('v3', { version: 'v2' }), delta('v4', { version: 'v3' }), full('v3b'), delta('v4', { version: 'v3b' }), delta('v5', { version: 'v4' })], target: 'v5', expected: 3 },
  { name: 'equal paths: as networkx chooses', device: device('v1'), packages: [full('v2b'), full('v2a'), delta('v3', { version: 'v2a' }), delta('v3', { version: 'v2b' })], target: 'v3', expected: 0 },
  { name: 'equal paths, listed the other way', device: device('v1'), packages: [full('v2a'), full('v2b'), delta('v3', { version: 'v2b' }), delta('v3', { version: 'v2a' })], target: 'v3', expected: 0 },
  {
    name: 'three equal paths: as networkx chooses',
    device: device('v1'),
    packages: [delta('v3', { version: 'v2c' }), full('v2c'), full('v2b'), full('v2a'), delta('v3', { version: 'v2a' }), delta('v3', { version: 'v2b' })],
    target: 'v3',
    expected: 1,
  },
  { name: 'cycles: back and forth between versions, then on', device: device('v1'), packages: [full('v1'), full('v2'), delta('v3', { version: 'v2' })], target: 'v3', expected: 1 },
  { name: 'cycles without the target', device: device('v1'), packages: [full('v1'), full('v2'), delta('v3', { version: 'v9' })], target: 'v3', expected: null },
  { name: 'a condition on a device flag', device: device('v1', { channel: 'beta' }), packages: [delta('v2', { channel: 'stable' }), delta('v2', { channel: 'beta' })], target: 'v2', expected: 1 },
];

describe('resolveUpdate', () => {
  for (const c of cases) {
    it(c.name, () => {
      assert.equal(resolveUpdate(c.device, c.packages, c.target), c.expected);
    });
  }

  it('answers in time for a few hundred packages', () => {
    const packages = Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? full(`v${i}`) : delta(`v${i}`, { version: `v${i - 1}` })));
    const started = performance.now();
    assert.equal(resolveUpdate(device('v0'), packages, 'v299'), 298);
    assert.ok(performance.now() - started < 2000);
  });
});

describe('installableOn', () => {
  it('needs every condition, another version and the same device type', () => {
    const base = factMap(device('v2', { flag: 'yes' }));
    assert.equal(installableOn(base, factMap(delta('v3', { flag: 'yes', version: 'v2' }))), true);
    assert.equal(installableOn(base, factMap(delta('v3', { flag: 'yes', missing: 'x' }))), false);
    assert.equal(installableOn(base, factMap(full('v2'))), false);
    assert.equal(installableOn(base, factMap(full('v3', 'other'))), false);
  });

  it('lets the version and device type given win over metadata keys of the same name', () => {
    const facts = factMap({ version: 'v2', deviceType: 'board', metadata: { version: 'v9', 'rdfm.software.version': 'v9' } });
    assert.equal(facts.get('version'), 'v2');
    assert.equal(facts.get('rdfm.software.version'), 'v2');
  });
});
