import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FleetError } from '../../src/core/errors.ts';
import { archiveSeries, chooseArchive, createRrdState, updateRrd, type RrdRowWrite, type RrdState } from '../../src/core/rrd-archive.ts';
import { consolidationFunctions, rrdDefinition, type RrdDefinition } from '../../src/core/rrd.ts';

/** An hour boundary, so that every archive below starts a row there. */
const start = 1_700_000_000 - (1_700_000_000 % 3600);

/** Feeds updates at start + offset and collects every row written, keyed `archive:t`. */
function feed(definition: RrdDefinition, updates: Array<[offset: number, value: number | null]>, state = createRrdState(definition, start)) {
  const rows = new Map<string, RrdRowWrite>();
  for (const [offset, value] of updates) {
    for (const row of updateRrd(definition, state, start + offset, value).rows) rows.set(`${row.archive}:${row.t}`, row);
  }
  return { state, rows };
}

function rowValue(rows: Map<string, RrdRowWrite>, archive: number, offset: number): number | null | undefined {
  return rows.get(`${archive}:${start + offset}`)?.value;
}

function assertClose(actual: number | null | undefined, expected: number | null, message: string) {
  if (expected === null || actual === null || actual === undefined) assert.equal(actual, expected, message);
  else assert.ok(Math.abs(actual - expected) < 1e-9 * Math.max(1, Math.abs(expected)), `${message}: ${actual} is not ${expected}`);
}

const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;

describe('updateRrd with gauge values every 10 seconds', () => {
  const stepsPerRow = [1, 5, 60];
  const args = ['--step', '60', 'DS:v:GAUGE:120:U:U'];
  for (const steps of stepsPerRow) for (const cf of consolidationFunctions) args.push(`RRA:${cf}:0.5:${steps}:1000`);
  const definition = rrdDefinition(args);
  const updates: Array<[number, number]> = [];
  for (let k = 1; k <= 3 * 360; k++) updates.push([10 * k, ((k * 37) % 101) - 50 + k / 7]);
  const { state, rows } = feed(definition, updates);

  // Each value holds for the 10 seconds before it: a primary point is the mean of its six values.
  const pdps: number[] = [];
  for (let j = 0; j < updates.length / 6; j++) pdps.push(mean(updates.slice(6 * j, 6 * j + 6).map(([, v]) => v)));
  const expected = (cf: string, points: number[]) =>
    cf === 'AVERAGE' ? mean(points) : cf === 'MIN' ? Math.min(...points) : cf === 'MAX' ? Math.max(...points) : points.at(-1)!;

  it('writes one row per completed interval of each archive with the consolidated primary points', () => {
    definition.archives.forEach((archive, index) => {
      const resolution = 60 * archive.steps;
      for (let end = resolution; end <= 3 * 3600; end += resolution) {
        const points = pdps.slice((end - resolution) / 60, end / 60);
        assertClose(rowValue(rows, index, end), expected(archive.cf, points), `${archive.cf} ${archive.steps} at ${end}`);
        assert.equal(rows.get(`${index}:${start + end}`)!.slot, ((start + end) / resolution) % archive.rows);
      }
    });
    assert.equal(rows.size, 4 * (180 + 36 + 3));
  });

  it('gives the stored rows back as a grid from start to end', () => {
    definition.archives.forEach((archive, index) => {
      const stored = [...rows.values()].filter((row) => row.archive === index);
      const resolution = 60 * archive.steps;
      const series = archiveSeries(definition, index, stored, start, start + 3 * 3600);
      assert.equal(series.length, (3 * 3600) / resolution + 1);
      assert.deepEqual(series[0], [start, null], 'nothing ends at the start');
      for (const [t, value] of series.slice(1)) {
        const points = pdps.slice((t - start - resolution) / 60, (t - start) / 60);
        assertClose(value, expected(archive.cf, points), `${archive.cf} ${archive.steps} at ${t}`);
      }
    });
  });

  it('keeps the state JSON-serializable', () => {
    assert.deepEqual(JSON.parse(JSON.stringify(state)), state);
  });
});

describe('updateRrd unknown primary points', () => {
  it('makes a row unknown when more than xff of its points are unknown', () => {
    const definition = rrdDefinition(['--step', '60', 'DS:v:GAUGE:120:0:100',
      'RRA:AVERAGE:0.5:4:100', 'RRA:MAX:0.5:4:100', 'RRA:LAST:0.5:4:100', 'RRA:AVERAGE:0:4:100', 'RRA:MIN:0.5:1:100']);
    // Primary points (numbered from 1) whose values are all out of range.
    const bad = new Set([2, 5, 6, 9, 10, 11, 16]);
    const updates: Array<[number, number]> = [];
    const pdps: Array<number | null> = [];
    for (let j = 1; j <= 20; j++) {
      const values = [1, 2, 3, 4, 5, 6].map((i) => (bad.has(j) ? 1000 : (j * 7 + i * 3) % 50));
      values.forEach((v, i) => updates.push([60 * (j - 1) + 10 * (i + 1), v]));
      pdps.push(bad.has(j) ? null : mean(values));
    }
    const { rows } = feed(definition, updates);
    const known = (row: number) => pdps.slice(4 * row, 4 * row + 4).filter((v): v is number => v !== null);
    for (let j = 1; j <= 20; j++) assertClose(rowValue(rows, 4, 60 * j), pdps[j - 1]!, `primary point ${j}`);
    // Row 1: one unknown point; row 2: two, exactly xff; row 3: three; row 4: its last point.
    assertClose(rowValue(rows, 0, 240), mean(known(0)), 'one unknown');
    assertClose(rowValue(rows, 0, 480), mean(known(1)), 'half unknown');
    assert.equal(rowValue(rows, 0, 720), null, 'three unknown');
    assertClose(rowValue(rows, 0, 960), mean(known(3)), 'last unknown');
    assertClose(rowValue(rows, 1, 240), Math.max(...known(0)), 'max');
    assert.equal(rowValue(rows, 1, 720), null, 'max of mostly unknown');
    assertClose(rowValue(rows, 2, 240), pdps[3]!, 'last');
    assert.equal(rowValue(rows, 2, 960), null, 'last point unknown');
    assert.equal(rowValue(rows, 3, 240), null, 'xff 0 with one unknown');
    assertClose(rowValue(rows, 3, 1200), mean(known(4)), 'xff 0 with none unknown');
  });

  it('leaves time beyond the heartbeat unknown, and averages the known seconds of a point', () => {
    const definition = rrdDefinition(['--step', '60', 'DS:v:GAUGE:30:U:U', 'RRA:AVERAGE:0.5:1:100']);
    const updates: Array<[number, number | null]> = [];
    for (let t = 10; t <= 600; t += 10) updates.push([t, 5]);
    updates.push([720, 7]); // 120 s after the last: (600, 720] unknown
    for (let t = 730; t <= 910; t += 10) updates.push([t, 7]);
    updates.push([1090, 9]); // 180 s: the known 10 s of (900, 960] are dropped with the rest
    updates.push([1100, 9], [1110, 3], [1120, 3], [1130, 3], [1140, 3]);
    updates.push([1190, 1], [1200, 2]); // 50 s beyond the heartbeat in one point
    updates.push([1210, null], [1220, null], [1230, null], [1240, 4], [1250, 4], [1260, 4]); // 30 s unknown: half
    updates.push([1270, null], [1280, null], [1290, null], [1300, null], [1310, 6], [1320, 6]); // 40 s unknown
    updates.push([1330, 8], [1340, 8], [1350, 8], [1360, 8], [1370, 8], [1380, null]);
    const { rows } = feed(definition, updates);
    for (let t = 60; t <= 600; t += 60) assert.equal(rowValue(rows, 0, t), 5, `at ${t}`);
    assert.equal(rowValue(rows, 0, 660), null);
    assert.equal(rowValue(rows, 0, 720), null);
    for (let t = 780; t <= 900; t += 60) assert.equal(rowValue(rows, 0, t), 7, `at ${t}`);
    for (const t of [960, 1020, 1080]) assert.equal(rowValue(rows, 0, t), null, `at ${t}`);
    assertClose(rowValue(rows, 0, 1140), (9 * 10 + 3 * 40) / 50, 'mean over the known 50 s');
    assert.equal(rowValue(rows, 0, 1200), null, 'more than half unknown');
    assertClose(rowValue(rows, 0, 1260), 4, 'half unknown');
    assert.equal(rowValue(rows, 0, 1320), null, '40 s unknown');
    // rrdtool does not count the unknown stretch of the update that completes a point.
    assertClose(rowValue(rows, 0, 1380), 8, 'unknown at the end');
  });
});

describe('updateRrd rates', () => {
  const counterOf = (type: string, bounds = 'U:U') => rrdDefinition(['--step', '60', `DS:v:${type}:120:${bounds}`, 'RRA:AVERAGE:0.5:1:100']);
  const perMinute = (values: number[]) => values.map((v, i): [number, number] => [60 * (i + 1), v]);

  it('turns counters into rates per second, across 32 and 64 bit wraps', () => {
    const high = 2 ** 64 - 4096;
    const { rows } = feed(counterOf('COUNTER'), perMinute([1000, 1600, 4294967000, 304, high, 2048]));
    assert.equal(rowValue(rows, 0, 60), null, 'no previous value');
    assertClose(rowValue(rows, 0, 120), 10, 'rate');
    assertClose(rowValue(rows, 0, 180), (4294967000 - 1600) / 60, 'rise');
    assertClose(rowValue(rows, 0, 240), 600 / 60, '32 bit wrap');
    assertClose(rowValue(rows, 0, 300), (high - 304) / 60, 'rise');
    assertClose(rowValue(rows, 0, 360), 6144 / 60, '64 bit wrap');
  });

  it('lets derive rates fall, within bounds', () => {
    const values = perMinute([100, 700, 400, 1000]);
    const free = feed(counterOf('DERIVE'), values).rows;
    assert.deepEqual([120, 180, 240].map((t) => rowValue(free, 0, t)), [10, -5, 10]);
    const bounded = feed(counterOf('DERIVE', '0:U'), values).rows;
    assert.deepEqual([120, 180, 240].map((t) => rowValue(bounded, 0, t)), [10, null, 10]);
  });

  it('divides absolute values by the time since the previous update', () => {
    const { rows } = feed(counterOf('ABSOLUTE'), [[60, 600], [90, 600], [120, 300]]);
    assertClose(rowValue(rows, 0, 60), 10, 'first');
    assertClose(rowValue(rows, 0, 120), (20 * 30 + 10 * 30) / 60, 'mixed');
  });

  it('refuses updates not after the last one, leaving the state as it was', () => {
    const definition = counterOf('COUNTER');
    const { state } = feed(definition, [[60, 10], [70, 20]]);
    const before = structuredClone(state);
    for (const t of [start + 70, start + 65, Number.NaN]) {
      assert.throws(() => updateRrd(definition, state, t, 30), (error: unknown) => error instanceof FleetError && error.code === 'bad_request');
    }
    assert.deepEqual(state, before);
  });
});

describe('updateRrd jumps', () => {
  const definition = rrdDefinition(['--step', '60', 'DS:v:GAUGE:600:U:U', 'RRA:AVERAGE:0.5:1:3', 'RRA:AVERAGE:0.5:2:100']);

  it('gives the new rate to every skipped point, writing at most `rows` rows', () => {
    const state = createRrdState(definition, start);
    assert.deepEqual(updateRrd(definition, state, start + 60, 1).rows, [{ archive: 0, slot: ((start + 60) / 60) % 3, t: start + 60, value: 1 }]);
    const { rows } = updateRrd(definition, state, start + 600, 7);
    const expected = [
      ...[480, 540, 600].map((offset) => ({ archive: 0, slot: ((start + offset) / 60) % 3, t: start + offset, value: 7 })),
      { archive: 1, slot: ((start + 120) / 120) % 100, t: start + 120, value: (1 + 7) / 2 },
      ...[240, 360, 480, 600].map((offset) => ({ archive: 1, slot: ((start + offset) / 120) % 100, t: start + offset, value: 7 })),
    ];
    assert.deepEqual(rows, expected);
  });

  it('spreads the mean since the last completed point over all the points an update completes, as rrdtool does', () => {
    const { rows, state } = feed(definition, [[600, 1], [610, 2], [905, 8]]);
    const spread = (2 * 10 + 8 * 290) / 300;
    for (const offset of [780, 840, 900]) assertClose(rowValue(rows, 0, offset), spread, `at ${offset}`);
    assert.equal(rowValue(rows, 0, 720), undefined, 'overwritten at once');
    assertClose(rowValue(rows, 1, 720), spread, 'first of two steps');
    assertClose(rowValue(rows, 1, 840), spread, 'second');
    assert.deepEqual(state.archives[1], { value: spread, unknownPdps: 0 }, 'one point carried into the next row');
    assert.equal(state.pdpValue, 8 * 5);
  });

  it('writes unknown rows for years without updates, at most `rows` of them', () => {
    const { rows } = feed(definition, [[60, 1], [10 * 365 * 86400 + 30, 2]]);
    const written = [...rows.values()].filter((row) => row.t > start + 60);
    assert.equal(written.filter((row) => row.archive === 0).length, 3);
    assert.equal(written.filter((row) => row.archive === 1).length, 100);
    assert.ok(written.every((row) => row.value === null));
  });
});

describe('RrdState', () => {
  it('continues the same after a JSON round trip', () => {
    const definition = rrdDefinition(['--step', '60', 'DS:v:DERIVE:90:U:U', 'RRA:AVERAGE:0.5:1:50', 'RRA:MIN:0.5:3:50', 'RRA:MAX:0.3:7:50', 'RRA:LAST:0.5:2:50']);
    let direct = createRrdState(definition, start + 17);
    let restored = createRrdState(definition, start + 17);
    let t = start + 17;
    for (let i = 0; i < 2000; i++) {
      t += [7, 13, 40, 95, 0.5][i % 5]! * (1 + (i % 3));
      const value = i % 11 === 0 ? null : (i * 7919) % 1000;
      const a = updateRrd(definition, direct, t, value);
      const b = updateRrd(definition, JSON.parse(JSON.stringify(restored)) as RrdState, t, value);
      assert.deepEqual(b.rows, a.rows);
      direct = a.state;
      restored = b.state;
    }
    assert.deepEqual(restored, direct);
  });

  it('starts with the unknown part of the current point and row', () => {
    const definition = rrdDefinition(['--step', '60', 'DS:v:GAUGE:600:U:U', 'RRA:AVERAGE:0.5:5:10']);
    const state = createRrdState(definition, start + 130);
    assert.deepEqual(state, { lastUpdate: start + 130, lastValue: null, pdpValue: 0, pdpUnknown: 10, archives: [{ value: null, unknownPdps: 2 }] });
    // Points 3 to 5 of the row known: 2 of 5 unknown is within xff.
    const { rows } = feed(definition, [[180, 4], [240, 4], [300, 4]], state);
    assert.equal(rowValue(rows, 0, 300), 4);
  });
});

describe('chooseArchive', () => {
  const definition = rrdDefinition();
  const now = 1_700_000_000;
  const hour = 3600;
  const day = 86400;

  it('takes the finest archive of the function reaching back to the start', () => {
    assert.deepEqual(chooseArchive(definition, 'AVERAGE', now - hour, now, now), { archive: 0, resolution: 60 });
    assert.deepEqual(chooseArchive(definition, 'AVERAGE', now - 3 * day, now, now), { archive: 1, resolution: 300 });
    assert.deepEqual(chooseArchive(definition, 'AVERAGE', now - 30 * day, now - 20 * day, now), { archive: 4, resolution: 3600 });
    assert.deepEqual(chooseArchive(definition, 'AVERAGE', now - 365 * day, now, now), { archive: 7, resolution: 86400 });
    assert.deepEqual(chooseArchive(definition, 'MIN', now - hour, now, now), { archive: 2, resolution: 300 });
    assert.deepEqual(chooseArchive(definition, 'MAX', now - 30 * day, now, now), { archive: 6, resolution: 3600 });
  });

  it('counts back from the last complete row of each archive', () => {
    const oldest = now - (now % 60) - 2880 * 60;
    assert.equal(chooseArchive(definition, 'AVERAGE', oldest, now, now).archive, 0);
    assert.equal(chooseArchive(definition, 'AVERAGE', oldest - 1, now, now).archive, 1);
  });

  it('takes the covering archive closest to a resolution asked for', () => {
    assert.deepEqual(chooseArchive(definition, 'AVERAGE', now - hour, now, now, 3600), { archive: 4, resolution: 3600 });
    assert.deepEqual(chooseArchive(definition, 'AVERAGE', now - hour, now, now, 1000), { archive: 1, resolution: 300 });
    assert.deepEqual(chooseArchive(definition, 'AVERAGE', now - hour, now, now, 7 * day), { archive: 7, resolution: 86400 });
    assert.deepEqual(chooseArchive(definition, 'AVERAGE', now - 30 * day, now, now, 60), { archive: 4, resolution: 3600 }, 'only archives reaching back qualify');
  });

  it('falls back to the archive covering most of a range none reaches', () => {
    assert.deepEqual(chooseArchive(definition, 'AVERAGE', now - 20 * 365 * day, now, now), { archive: 7, resolution: 86400 });
    assert.deepEqual(chooseArchive(definition, 'MIN', now - 20 * 365 * day, now - 19 * 365 * day, now, 60), { archive: 8, resolution: 86400 });
  });

  it('refuses a function no archive keeps', () => {
    assert.throws(() => chooseArchive(definition, 'LAST', now - hour, now, now), (error: unknown) => error instanceof FleetError && error.code === 'bad_request');
  });
});

describe('archiveSeries', () => {
  const definition = rrdDefinition(['--step', '60', 'DS:v:GAUGE:120:U:U', 'RRA:AVERAGE:0.5:1:5']);
  const rows = [
    { slot: 0, t: 600, value: 1 },
    { slot: 1, t: 660, value: 2 },
    { slot: 2, t: 420, value: 9 }, // not yet overwritten by 720
    { slot: 3, t: 780, value: null },
    { slot: 0, t: 840, value: 5 }, // 840 belongs in slot 4: not a row of this archive
  ];

  it('places each stored row on the grid of interval ends and leaves the rest null', () => {
    assert.deepEqual(archiveSeries(definition, 0, rows, 590, 790), [[600, 1], [660, 2], [720, null], [780, null], [840, null]]);
    assert.deepEqual(archiveSeries(definition, 0, rows, 600, 780), [[600, 1], [660, 2], [720, null], [780, null]]);
    assert.deepEqual(archiveSeries(definition, 0, rows, 420, 420), [[420, 9]], 'until overwritten, a slot still holds its older row');
    assert.deepEqual(archiveSeries(definition, 0, rows, 800, 700), []);
  });

  it('refuses an archive the definition lacks', () => {
    assert.throws(() => archiveSeries(definition, 1, rows, 0, 60), FleetError);
  });
});
