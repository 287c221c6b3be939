import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { backends } from '../helpers/backends.ts';
import { request, startTestServer, type TestServer } from '../helpers/server.ts';
import { killChildren, spawnFleetd, type Spawned } from '../helpers/process.ts';

/** The client commands as a user runs them: the real `bin/fleetd.js` in a child process. */

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export const describeRun = (run: Run) => `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;

/**
 * A home of its own for the commands (so ~/.config/fleetd/client.yaml is the test's, never the
 * developer's), and the connection to `server` as flags.
 */
export class ClientRunner {
  readonly home = mkdtempSync(join(tmpdir(), 'fleetd-client-'));
  readonly server: TestServer;
  readonly key: string;

  private constructor(server: TestServer, key: string) {
    this.server = server;
    this.key = key;
  }

  /** Runs as the server's admin, with an API key made for the purpose. */
  static async create(server: TestServer): Promise<ClientRunner> {
    const made = await request(server.url, 'POST', `/api/orgs/${server.admin.orgId}/api-keys`, { token: server.admin.token, body: { name: 'cli tests' } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    return new ClientRunner(server, made.body.key);
  }

  /** `fleetd ...args`, with no connection settings but `env`. Killed after 30 s, which fails the test. */
  bare(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Run> {
    return this.#finish(args, spawnFleetd(args, { cwd: this.home, env: { HOME: this.home, ...options.env }, input: options.input }));
  }

  /** Starts `fleetd ...args --url --key` and lets the test watch its output while it runs. */
  start(args: string[], options: { input?: string } = {}): { spawned: Spawned; ended: Promise<Run> } {
    const all = [...args, '--url', this.server.url, '--key', this.key];
    const spawned = spawnFleetd(all, { cwd: this.home, env: { HOME: this.home }, input: options.input });
    return { spawned, ended: this.#finish(all, spawned) };
  }

  async #finish(args: string[], run: Spawned): Promise<Run> {
    const timer = setTimeout(() => run.child.kill('SIGKILL'), 30_000);
    const { code, signal } = await run.exited;
    clearTimeout(timer);
    assert.equal(signal, null, `fleetd ${args.join(' ')} was killed by ${signal}\n${run.stderr()}`);
    return { code, stdout: run.stdout(), stderr: run.stderr() };
  }

  /** `fleetd ...args --url <server> --key <admin key>`. */
  run(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Run> {
    return this.bare([...args, '--url', this.server.url, '--key', this.key], options);
  }

  /** Runs a command that must succeed, and returns its standard output. */
  async ok(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<string> {
    const run = await this.run(args, options);
    assert.equal(run.code, 0, `fleetd ${args.join(' ')}: ${describeRun(run)}`);
    return run.stdout;
  }

  /** Runs a `--json` command that must succeed, and parses what it printed. */
  async json<T = any>(args: string[]): Promise<T> {
    return JSON.parse(await this.ok([...args, '--json'])) as T;
  }

  close(): void {
    killChildren();
    rmSync(this.home, { recursive: true, force: true });
  }
}

/** The rows of a table the CLI printed, each a list of its cells (cells hold no double spaces). */
export const tableRows = (stdout: string): string[][] =>
  stdout
    .trimEnd()
    .split('\n')
    .map((line) => line.split(/ {2,}/));

/**
 * A server on SQLite (enough: the server is under test elsewhere) and a runner against it, started
 * before the file's tests and stopped after them; `take` receives both once they are up.
 */
export function useClientServer(take: (started: { server: TestServer; cli: ClientRunner }) => void): void {
  let server: TestServer | undefined;
  let cli: ClientRunner | undefined;
  before(async () => {
    const sqlite = (await backends()).find((backend) => backend.name === 'sqlite')!;
    server = await startTestServer(sqlite);
    cli = await ClientRunner.create(server);
    take({ server, cli });
  });
  after(async () => {
    cli?.close();
    await server?.close();
  });
}

/** A device of the admin's organization, made through the API; its id. */
export async function createDevice(server: TestServer, name: string, tags: string[] = []): Promise<string> {
  const made = await request(server.url, 'POST', `/api/orgs/${server.admin.orgId}/devices`, { token: server.admin.token, body: { name, tags, model: 'Pro 1' } });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  return made.body.id;
}
