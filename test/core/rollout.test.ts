import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exceedsFailureThreshold, inMaintenanceWindow, phaseFinished, phaseOfEach, phaseSizes, type MaintenanceWindow, type PhaseSize } from '../../src/core/rollout.ts';

describe('phaseSizes', () => {
  const table: Array<[number, PhaseSize[], number[]]> = [
    [10, [{ size: 2 }, { percent: 100 }], [2, 8]],
    [10, [{ percent: 10 }, { percent: 50 }, { percent: 100 }], [1, 5, 4]],
    [3, [{ percent: 10 }, { percent: 100 }], [1, 2]],
    [10, [{ size: 2 }], [10]],
    [10, [{ size: 4 }, { size: 4 }], [4, 6]],
    [3, [{ size: 5 }, { size: 5 }], [3, 0]],
    [0, [{ size: 1 }, { percent: 100 }], [0, 0]],
    [1, [{ percent: 1 }, { percent: 100 }], [1, 0]],
    [200, [{ percent: 5 }, { percent: 25 }, { percent: 100 }], [10, 50, 140]],
  ];
  for (const [total, phases, sizes] of table) {
    it(`${total} devices over ${JSON.stringify(phases)} → ${JSON.stringify(sizes)}`, () => {
      assert.deepEqual(phaseSizes(total, phases), sizes);
      assert.equal(sizes.reduce((a, b) => a + b, 0), total, 'every device is in a phase');
    });
  }

  it('gives each device its phase, in order', () => {
    assert.deepEqual(phaseOfEach(5, [{ size: 2 }, { percent: 100 }]), [0, 0, 1, 1, 1]);
  });
});

describe('inMaintenanceWindow', () => {
  const at = (iso: string) => new Date(iso);
  // 2026-11-20 is a Friday (5); the 21st a Saturday (6); the 22nd a Sunday (0).
  const table: Array<[MaintenanceWindow | null, string, boolean]> = [
    [null, '2026-11-20T12:00:00Z', true],
    [{ start: '02:00', end: '04:00' }, '2026-11-20T02:00:00Z', true],
    [{ start: '02:00', end: '04:00' }, '2026-11-20T03:59:00Z', true],
    [{ start: '02:00', end: '04:00' }, '2026-11-20T04:00:00Z', false],
    [{ start: '02:00', end: '04:00' }, '2026-11-20T01:59:00Z', false],
    [{ days: [6, 0], start: '02:00', end: '04:00' }, '2026-11-20T03:00:00Z', false],
    [{ days: [6, 0], start: '02:00', end: '04:00' }, '2026-11-21T03:00:00Z', true],
    [{ days: [6, 0], start: '02:00', end: '04:00' }, '2026-11-22T03:00:00Z', true],
    // Across midnight: 22:00 to 04:00 UTC.
    [{ start: '22:00', end: '04:00' }, '2026-11-20T23:30:00Z', true],
    [{ start: '22:00', end: '04:00' }, '2026-11-21T00:00:00Z', true],
    [{ start: '22:00', end: '04:00' }, '2026-11-21T03:59:00Z', true],
    [{ start: '22:00', end: '04:00' }, '2026-11-21T04:00:00Z', false],
    [{ start: '22:00', end: '04:00' }, '2026-11-21T12:00:00Z', false],
    [{ start: '22:00', end: '04:00' }, '2026-11-21T21:59:00Z', false],
    // Friday night only: Saturday's early hours belong to Friday's window, Friday's early hours do not.
    [{ days: [5], start: '22:00', end: '04:00' }, '2026-11-20T22:00:00Z', true],
    [{ days: [5], start: '22:00', end: '04:00' }, '2026-11-21T01:00:00Z', true],
    [{ days: [5], start: '22:00', end: '04:00' }, '2026-11-20T01:00:00Z', false],
    [{ days: [5], start: '22:00', end: '04:00' }, '2026-11-21T22:30:00Z', false],
    // Saturday night spills into Sunday: the week wraps.
    [{ days: [6], start: '23:00', end: '01:00' }, '2026-11-22T00:30:00Z', true],
    [{ days: [0], start: '23:00', end: '01:00' }, '2026-11-22T00:30:00Z', false],
  ];
  for (const [window, time, open] of table) {
    it(`${JSON.stringify(window)} at ${time}: ${open ? 'open' : 'closed'}`, () => {
      assert.equal(inMaintenanceWindow(window, at(time)), open);
    });
  }
});

describe('exceedsFailureThreshold', () => {
  const table: Array<[{ total: number; succeeded: number; failed: number }, number, number, boolean]> = [
    [{ total: 2, succeeded: 0, failed: 0 }, 30, 0, false],
    [{ total: 2, succeeded: 0, failed: 1 }, 30, 0, true],
    [{ total: 10, succeeded: 7, failed: 3 }, 30, 0, false],
    [{ total: 10, succeeded: 6, failed: 4 }, 30, 0, true],
    // Early in a large phase: one failure of the first two finished does not make 30% of 10.
    [{ total: 10, succeeded: 1, failed: 1 }, 30, 0, false],
    [{ total: 10, succeeded: 0, failed: 3 }, 30, 0, false],
    [{ total: 10, succeeded: 0, failed: 4 }, 30, 0, true],
    [{ total: 10, succeeded: 1, failed: 0 }, 0, 0, false],
    [{ total: 10, succeeded: 0, failed: 1 }, 0, 0, true],
    [{ total: 10, succeeded: 0, failed: 10 }, 100, 0, false],
    // Resumed with 2 failures accepted: they alone pause nothing; a third does while the share is too high.
    [{ total: 4, succeeded: 0, failed: 2 }, 30, 2, false],
    [{ total: 4, succeeded: 1, failed: 3 }, 30, 2, true],
    [{ total: 10, succeeded: 7, failed: 3 }, 30, 3, false],
  ];
  for (const [counts, threshold, accepted, pause] of table) {
    it(`${JSON.stringify(counts)}, threshold ${threshold}%, ${accepted} accepted: ${pause ? 'pause' : 'go on'}`, () => {
      assert.equal(exceedsFailureThreshold(counts, threshold, accepted), pause);
    });
  }
});

describe('phaseFinished', () => {
  it('once every device succeeded or failed', () => {
    assert.equal(phaseFinished({ total: 3, succeeded: 2, failed: 0 }), false);
    assert.equal(phaseFinished({ total: 3, succeeded: 2, failed: 1 }), true);
    assert.equal(phaseFinished({ total: 0, succeeded: 0, failed: 0 }), true);
  });
});
