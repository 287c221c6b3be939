import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { killChildren, spawnFleetd } from '../helpers/process.ts';

/** Runs the fleetd program as a user does, for the tests of the commands that work on a configuration. */

const tempDirs: string[] = [];

/** A temporary folder, removed when the test file ends. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fleetd-cli-'));
  tempDirs.push(dir);
  return dir;
}

after(() => {
  // Whatever a failed test left running or on disk.
  killChildren();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a fleetd command to its end (killed after 30 s, which fails the test). */
export async function fleetd(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; input?: string }): Promise<Run> {
  const run = spawnFleetd(args, options);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 30_000);
  const { code, signal } = await run.exited;
  clearTimeout(timer);
  assert.equal(signal, null, `fleetd ${args.join(' ')} was killed by ${signal}\n${run.stderr()}`);
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

export const describeRun = (run: Run) => `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
