import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderDeployment, type Deployment } from '../../src/cli/client/deployment-status.ts';
import { formatTable } from '../../src/cli/client/output.ts';
import { formatBytes, TransferProgress } from '../../src/cli/client/progress.ts';
import { parsePhases, parseWindow } from '../../src/cli/commands/deployments.ts';

/** The pieces of the client commands that need no server: tables, the progress bar, option parsing, the status view. */

describe('formatTable', () => {
  it('pads every column but the last to its widest cell, two spaces apart', () => {
    assert.equal(formatTable(['ID', 'NAME', 'TAGS'], [['dev_1', 'kitchen plug', 'a,b'], ['dev_22', 'x', '-']]), 'ID      NAME          TAGS\ndev_1   kitchen plug  a,b\ndev_22  x             -\n');
  });
});

describe('TransferProgress', () => {
  const capture = (isTTY: boolean) => {
    const out = { isTTY, text: '', write: (chunk: string) => ((out.text += chunk), true) };
    return out;
  };

  it('on a terminal, draws a bar with bytes, percent and rate in place, then the closing line', () => {
    const out = capture(true);
    const progress = new TransferProgress(4 * 1024 * 1024, 'Uploading a.bin', out);
    progress.advance(1024 * 1024);
    assert.match(out.text, /^\rUploading a\.bin \[#{8}-{22}\]  25%  1\.0 MiB \/ 4\.0 MiB  [\d.]+ \w+\/s\x1b\[K$/);
    progress.advance(3 * 1024 * 1024);
    progress.finish();
    assert.match(out.text, /\rUploading a\.bin \[#{30}\] 100%  4\.0 MiB \/ 4\.0 MiB  [\d.]+ \w+\/s\x1b\[K\nUploading a\.bin: 4\.0 MiB in [\d.]+ s \([\d.]+ \w+\/s\)\n$/);
  });

  it('elsewhere, writes only the closing line', () => {
    const out = capture(false);
    const progress = new TransferProgress(2048, 'Uploading b.bin', out);
    progress.advance(1024);
    progress.advance(1024);
    assert.equal(out.text, '');
    progress.finish();
    assert.match(out.text, /^Uploading b\.bin: 2\.0 KiB in [\d.]+ s \([\d.]+ \w+\/s\)\n$/);
  });

  it('formats sizes in binary units', () => {
    assert.deepEqual([0, 1023, 1024, 6 * 1024 * 1024 + 123, 3 * 1024 ** 3].map(formatBytes), ['0 B', '1023 B', '1.0 KiB', '6.0 MiB', '3.0 GiB']);
  });
});

describe('deployment options', () => {
  it('--phases takes counts and percentages in order', () => {
    assert.deepEqual(parsePhases('1,10%, 100%'), [{ size: 1 }, { percent: 10 }, { percent: 100 }]);
    for (const bad of ['0', '10%,x', '150%', '-1', '']) assert.throws(() => parsePhases(bad), /--phases: .* is neither a device count/, bad);
  });

  it('--window takes HH:MM-HH:MM, across midnight too', () => {
    assert.deepEqual(parseWindow('22:00-04:00'), { start: '22:00', end: '04:00' });
    for (const bad of ['22-04', '24:00-01:00', '22:00-04:60', '22:00']) assert.throws(() => parseWindow(bad), /must be HH:MM-HH:MM/, bad);
  });
});

describe('renderDeployment', () => {
  it('says what goes where, where it stands, and each phase', () => {
    const deployment: Deployment = {
      id: 'dep_1',
      name: 'spring',
      groupId: 'grp_1',
      targetVersion: '2.0',
      status: 'paused',
      phases: [{ size: 1 }, { percent: 50, startAt: '2026-01-02T00:00:00.000Z' }, { percent: 100 }],
      maintenanceWindow: { start: '22:00', end: '04:00', days: [1, 2] },
      failureThreshold: 20,
      currentPhase: 1,
      pausedReason: 'phase 2: 2 of 3 finished devices failed',
      createdAt: '2026-01-01T00:00:00.000Z',
      finishedAt: null,
      progress: {
        devices: 10,
        byStatus: { success: 2, failure: 2, pending: 1, scheduled: 5 },
        phases: [
          { phase: 0, devices: 1, byStatus: { success: 1 } },
          { phase: 1, devices: 4, byStatus: { failure: 2, pending: 1, success: 1 } },
          { phase: 2, devices: 5, byStatus: { scheduled: 5 } },
        ],
      },
    };
    assert.deepEqual(renderDeployment(deployment), [
      'Deployment dep_1 (spring): paused, phase 2 of 3',
      'Version 2.0 to group grp_1; pauses above 20% failures; window 22:00-04:00 UTC on Mon,Tue',
      'Paused: phase 2: 2 of 3 finished devices failed',
      '[############------------------] 40% (4 of 10 devices finished): scheduled 5, pending 1, success 2, failure 2',
      '  phase 1 (1 device): success 1',
      '  phase 2 (50%: 4 devices, from 2026-01-02T00:00:00.000Z): pending 1, success 1, failure 2',
      '  phase 3 (100%: 5 devices): scheduled 5',
    ]);
  });
});
