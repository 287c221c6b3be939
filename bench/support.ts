// What every benchmark shares: child processes that are always stopped, free ports on 127.0.0.1,
// an autocannon run whose every response is checked, and the result table.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Result } from 'autocannon';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** One benchmark module (bench/http.ts, later bench/ingest.ts, bench/ota.ts). */
export interface Benchmark {
  name: string;
  description: string;
  /** Longest the whole benchmark may take, in ms, for the given settings; the runner enforces it. */
  timeLimitMs(settings: Settings): number;
  /** Throws when it cannot be run or a response is wrong; resolves with whether every target was met. */
  run(settings: Settings): Promise<{ targetsMet: boolean }>;
}

export interface Settings {
  /** Seconds measured per target, split into `rounds`. */
  duration: number;
  /** Seconds of load per target before the measured rounds, not counted. */
  warmup: number;
  connections: number;
  /** Measured seconds are split into this many interleaved rounds per target. */
  rounds: number;
  /** When set, fleetd children run with --cpu-prof and write their profiles here. */
  cpuProfileDir?: string;
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): Settings {
  const number = (name: string, fallback: number, min: number, max: number) => {
    const text = env[name];
    if (text === undefined || text === '') return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < min || value > max) throw new Error(`${name}=${text} must be a number from ${min} to ${max}`);
    return value;
  };
  return {
    duration: number('BENCH_DURATION', 10, 1, 600),
    warmup: number('BENCH_WARMUP', 2, 0, 60),
    connections: Math.round(number('BENCH_CONNECTIONS', 50, 1, 1000)),
    rounds: Math.round(number('BENCH_ROUNDS', 2, 1, 20)),
    cpuProfileDir: env.BENCH_CPU_PROF || undefined,
  };
}

// Ports other services of a developer machine use; a benchmark never binds them.
const reservedPorts = new Set([5432, 4222, 1883, 6379, 7011]);

/** A port of 127.0.0.1 that was free a moment ago: bound on port 0, read, released. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
        const address = server.address();
        const found = typeof address === 'object' && address ? address.port : 0;
        server.close(() => resolve(found));
      });
    });
    if (port > 0 && !reservedPorts.has(port)) return port;
  }
  throw new Error('no free port found on 127.0.0.1');
}

/** The environment without any FLEETD_* of the developer, so the children see only what we pass. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('FLEETD_')) env[key] = value;
  return { ...env, ...extra };
}

export interface Child {
  name: string;
  process: ChildProcess;
  /** The last output of the child, for error messages. */
  output(): string;
  /** Rejects when the child exits before `stop()`. */
  exited: Promise<never>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** A new temporary folder, removed by `removeTempDir` or else by `cleanUp`. */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Kills every child still running and removes the temporary folders, at once (on exit and signals). */
export function cleanUp(): void {
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  running.clear();
  for (const dir of tempDirs) removeTempDir(dir);
}

/** Starts a long-running child (a server); `cleanUp()` ends it whatever happens. */
export function startChild(name: string, command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Child {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let stopping = false;
  const gone = new Promise<void>((resolve) => {
    child.once('exit', () => {
      running.delete(child);
      resolve();
    });
    child.once('error', () => {
      running.delete(child);
      resolve();
    });
  });
  const exited = new Promise<never>((_resolve, reject) => {
    void gone.then(() => {
      if (!stopping) reject(new Error(`${name} exited unexpectedly (code ${String(child.exitCode)}, signal ${String(child.signalCode)}):\n${tail}`));
    });
  });
  exited.catch(() => {});
  return {
    name,
    process: child,
    output: () => tail,
    exited,
    async stop(graceMs = 5000) {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null || !running.has(child)) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await gone;
      clearTimeout(timer);
    },
  };
}

/** Runs a command to its end; throws on a non-zero exit or after `timeoutMs`. */
export async function runCommand(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<string> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (exitCode) => resolve(exitCode));
    });
    if (code !== 0) throw new Error(`${[command, ...args].join(' ')} failed (exit ${String(code)}):\n${output}`);
    return output;
  } finally {
    clearTimeout(timer);
    running.delete(child);
  }
}

/** Waits until `url` answers 200, failing when `child` dies first or after `timeoutMs`. */
export async function waitForHttp(url: string, child: Child, timeoutMs: number, headers: Record<string, string> = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const attempt = fetch(url, { headers, signal: AbortSignal.timeout(2000) }).then(
      async (response) => {
        await response.arrayBuffer();
        return response.status;
      },
      (error: unknown) => (error as Error).message,
    );
    const outcome = await Promise.race([attempt, child.exited]);
    if (outcome === 200) return;
    last = String(outcome);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${child.name} did not answer 200 on ${url} within ${timeoutMs} ms (last: ${last}):\n${child.output()}`);
}

/** Rejects after `ms` with a message naming `what`. */
export async function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${Math.round(ms / 1000)} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export interface Target {
  title: string;
  url: string;
  /** Called before each run, so that a credential can be renewed between rounds. */
  headers: () => Promise<Record<string, string>>;
  /** Every response must carry exactly this body; without one, every response must still be a 200. */
  expectBody?: string;
  /** GET unless given; `body` is sent as it is. */
  method?: 'GET' | 'POST';
  body?: string;
  /** The server answering; a run fails when it dies. */
  child: Child;
}

export interface LoadResult {
  title: string;
  /** Responses counted over the measured runs, divided by their seconds. */
  requestsPerSecond: number;
  total: number;
  /** Latency percentiles in ms: the worst of the rounds. */
  p50: number;
  p99: number;
  /** CPU time the server process used per response during the measured runs (all its threads), in µs; undefined off Linux. */
  serverCpuPerRequest?: number;
}

/**
 * Loads each target in turn: a warm-up each (not counted), then `rounds` rounds in which each
 * target gets `duration / rounds` seconds, the order rotating from round to round. Interleaved
 * like this, a neighbour that slows the machine for a while slows every target alike, which keeps
 * the ratios meaningful on a shared machine. Any response that is not a 200 with the expected
 * body, any connection error or timeout, fails the whole measurement.
 */
export async function measure(targets: Target[], settings: Settings, log: (line: string) => void): Promise<LoadResult[]> {
  const slice = settings.duration / settings.rounds;
  if (settings.warmup > 0) {
    for (const target of targets) {
      log(`warming up ${target.title} (${settings.warmup} s)`);
      await loadOnce(target, await target.headers(), settings.warmup, settings.connections);
    }
  }
  const runs = targets.map(() => [] as Array<{ result: Result; cpu?: number }>);
  for (let round = 0; round < settings.rounds; round++) {
    for (let k = 0; k < targets.length; k++) {
      const i = (k + round) % targets.length;
      const target = targets[i]!;
      log(`round ${round + 1}/${settings.rounds}: ${target.title} (${slice} s)`);
      const headers = await target.headers();
      const pid = target.child.process.pid;
      const before = cpuSeconds(pid);
      const result = await loadOnce(target, headers, slice, settings.connections);
      const after = cpuSeconds(pid);
      runs[i]!.push({ result, cpu: before !== undefined && after !== undefined ? after - before : undefined });
    }
  }
  return targets.map((target, i) => {
    const mine = runs[i]!;
    const total = mine.reduce((sum, r) => sum + r.result.requests.total, 0);
    const seconds = mine.reduce((sum, r) => sum + r.result.duration, 0);
    const cpu = mine.every((r) => r.cpu !== undefined) ? mine.reduce((sum, r) => sum + r.cpu!, 0) : undefined;
    return {
      title: target.title,
      requestsPerSecond: total / seconds,
      total,
      p50: Math.max(...mine.map((r) => r.result.latency.p50)),
      p99: Math.max(...mine.map((r) => r.result.latency.p99)),
      serverCpuPerRequest: cpu === undefined || total === 0 ? undefined : (cpu * 1e6) / total,
    };
  });
}

const autocannonBin = join(repoRoot, 'node_modules', 'autocannon', 'autocannon.js');

/**
 * One load run, by autocannon in a process of its own: the load generator starts fresh every run,
 * whatever this process did before (the OTA benchmark's downloads leave a heap whose collections
 * slowed an in-process generator, and through it the answers counted).
 */
async function loadOnce(target: Target, headers: Record<string, string>, duration: number, connections: number): Promise<Result> {
  const args = ['-j', '-c', String(connections), '-p', '1', '-d', String(duration), '-t', '10', '-m', target.method ?? 'GET'];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}=${value}`);
  if (target.body !== undefined) args.push('-b', target.body);
  if (target.expectBody !== undefined) args.push('-E', target.expectBody);
  const generator = spawn(process.execPath, [autocannonBin, ...args, target.url], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  generator.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  generator.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  const ended = new Promise<number | null>((resolve) => generator.once('exit', resolve));
  let code: number | null;
  try {
    code = await within((duration + 30) * 1000, `load run ${target.title}`, Promise.race([ended, target.child.exited]));
  } finally {
    generator.kill();
  }
  if (code !== 0) throw new Error(`autocannon ended with ${code} on ${target.title}: ${stderr}`);
  const result = JSON.parse(stdout) as Result;
  const problems = problemsOf(result);
  if (problems.length > 0) throw new Error(`${target.title}: ${problems.join('; ')}`);
  return result;
}

/**
 * User + system CPU seconds of a process and all its threads so far, from /proc (Linux; USER_HZ
 * is 100 there). Unlike requests/s it hardly depends on what else the machine is doing.
 */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined || process.platform !== 'linux') return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** How many CPUs' worth of work the machine did during `ms` (all processes, from the kernel's counters). */
export async function busyCpus(ms = 1000): Promise<number> {
  const sample = () => cpus().reduce((acc, cpu) => ({ busy: acc.busy + cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq, all: acc.all + cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq + cpu.times.idle }), { busy: 0, all: 0 });
  const before = sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = sample();
  const all = after.all - before.all;
  return all > 0 ? ((after.busy - before.busy) / all) * cpus().length : 0;
}

function problemsOf(result: Result): string[] {
  const problems: string[] = [];
  const statuses = Object.entries(result.statusCodeStats ?? {})
    .filter(([status]) => status !== '200')
    .map(([status, { count }]) => `${count} × ${status}`);
  if (result.non2xx > 0 || statuses.length > 0) problems.push(`non-200 responses: ${statuses.join(', ') || result.non2xx}`);
  if (result.errors > 0) problems.push(`${result.errors} connection errors (${result.timeouts} timeouts)`);
  if (result.mismatches > 0) problems.push(`${result.mismatches} responses with another body`);
  if (result.requests.total === 0) problems.push('no response at all');
  return problems;
}

/** A plain text table, first column left-aligned, the others right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** One JSON request to a fleetd under test; anything but 2xx fails the benchmark. */
export async function callApi<T>(base: string, method: string, path: string, options: { token?: string; body?: unknown }): Promise<T> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const response = await fetch(base + path, { method, headers, body: JSON.stringify(options.body), signal: AbortSignal.timeout(30_000) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  return JSON.parse(text) as T;
}

export const fleetdBin = join(repoRoot, 'bin', 'fleetd.js');
export const benchAdmin = { email: 'bench-admin@example.com', password: 'bench-admin-password-1' };

/**
 * Starts `fleetd serve` on the data folder (with `common`, the flags its admin was created with,
 * such as --data and --database) after creating the bench's system admin there; resolves once ready.
 */
export async function startFleetdNode(name: string, data: string, common: string[], serveArgs: string[], settings: Settings): Promise<{ child: Child; base: string }> {
  await runCommand(process.execPath, [fleetdBin, 'admin', 'create', benchAdmin.email, '--org', 'default', ...common], {
    cwd: data,
    env: cleanEnv({ FLEETD_ADMIN_PASSWORD: benchAdmin.password }),
    timeoutMs: 60_000,
  });
  const port = await freePort();
  const profileArgs = settings.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', settings.cpuProfileDir] : [];
  // No rrduino listener: its fixed port would clash between the nodes of one run.
  const child = startChild(name, process.execPath, [...profileArgs, fleetdBin, 'serve', '--port', String(port), '--host', '127.0.0.1', '--rrduino', 'false', ...serveArgs, ...common], {
    cwd: data,
    env: cleanEnv(),
  });
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base}/readyz`, child, 30_000);
  return { child, base };
}

