import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** `fleetd` as a user runs it: bin/fleetd.js in a child process. */
const bin = fileURLToPath(new URL('../../bin/fleetd.js', import.meta.url));

/** The environment of the test run, without the developer's FLEETD_* settings or node:test's own markers. */
const baseEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('FLEETD_') && name !== 'NODE_TEST_CONTEXT'));

const children = new Set<ChildProcess>();

/** Kills whatever a failed test left running; call it from the test file's `after`. */
export function killChildren(): void {
  for (const child of children) child.kill('SIGKILL');
}

export interface Spawned {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `node bin/fleetd.js ...args` in `cwd` with a clean environment plus `env`. */
export function spawnFleetd(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; input?: string }): Spawned {
  const child = spawn(process.execPath, [bin, ...args], { cwd: options.cwd, env: { ...baseEnv, ...options.env }, stdio: 'pipe' });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // No input means an empty standard input, as from `< /dev/null`: nothing may wait on it.
  child.stdin!.end(options.input ?? '');
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** A TCP port of 127.0.0.1 free a moment ago (`--port 0` would not tell the test which port the server got). */
export async function freePort(): Promise<number> {
  const reserved = new Set([5432, 4222, 1883, 6379, 7011, 7777, 7770]);
  for (;;) {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    server.close();
    await once(server, 'close');
    if (!reserved.has(port)) return port;
  }
}

/** Polls until `check` holds, or fails with `what` after `ms`. */
export async function waitFor(check: () => boolean, what: () => string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting: ${what()}`);
    await sleep(25);
  }
}
