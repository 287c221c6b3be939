// OTA benchmark: package downloads and update checks through fleetd, against a bare node:http server
// doing only the transfer, in the same run.
//
// Downloads: `devices` clients (200) fetch one package of `packageMb` MiB (50) at once, each over its
// own connection, through the signed link an update check handed out (what a device does). The
// baseline serves the same file from disk with a plain read stream. Throughput is the bytes of the
// whole batch over the time until its last byte; fleetd's resident memory is sampled throughout and
// must stay bounded: streaming, not buffering a package per client. Target: fleetd ≥ 0.8 of the baseline.
//
// Update checks: autocannon POSTs a device's update check (device API key, `{version, deviceType}`)
// whose answer is a package waiting for it; the baseline answers the same JSON bytes without looking
// at anything. Target: fleetd ≥ 0.5 of the baseline.
//
// fleetd runs as shipped (`bin/fleetd.js serve`) on SQLite with the local blob folder.
// BENCH_OTA_DEVICES (200) and BENCH_OTA_MB (50) change the download batch.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, openAsBlob, readFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import {
  benchAdmin,
  type Benchmark,
  callApi,
  type Child,
  cleanEnv,
  freePort,
  makeTempDir,
  measure,
  removeTempDir,
  repoRoot,
  type Settings,
  startChild,
  startFleetdNode,
  table,
  waitForHttp,
} from './support.ts';

const downloadTarget = 0.8;
const checkTarget = 0.5;
const devices = Number(process.env.BENCH_OTA_DEVICES ?? 200);
const packageMb = Number(process.env.BENCH_OTA_MB ?? 50);
/** Resident memory fleetd may add while serving the whole batch: far below one package per client. */
const memoryBoundMb = 256;
const deviceType = 'bench-board';

export const benchmark: Benchmark = {
  name: 'ota',
  description: `${devices} devices downloading a ${packageMb} MiB package at once, and update checks/s, through fleetd vs a bare node:http server`,
  // Four download batches and a warm-up, two update-check targets, start-up.
  timeLimitMs: (s) => (2 * (s.warmup + s.duration) + 600) * 1000,
  run,
};

interface Batch {
  bytes: number;
  seconds: number;
  /** Peak resident memory of the server during the batch, in MiB. */
  peakRssMb?: number;
}

async function run(settings: Settings): Promise<{ targetsMet: boolean }> {
  const log = (line: string) => process.stdout.write(`  ${line}\n`);
  const data = makeTempDir('fleetd-bench-ota-');
  const children: Child[] = [];
  try {
    const file = join(data, 'package.bin');
    const sha256 = await writeRandomFile(file, packageMb * 1024 * 1024);
    log(`package: ${packageMb} MiB of random bytes, sha256 ${sha256.slice(0, 16)}…`);

    const node = await startFleetdNode('fleetd', data, ['--data', data], [], settings);
    children.push(node.child);
    const setup = await prepareFleet(node.base, file);
    const check = await updateCheck(node.base, setup.deviceKey);
    if (check.sha256 !== sha256) throw new Error(`the update check named sha256 ${check.sha256}, the package has ${sha256}`);

    const baselinePort = await freePort();
    const baseline = startChild('baseline', process.execPath, ['--import', 'tsx', join(repoRoot, 'bench', 'baseline-ota.ts')], {
      cwd: repoRoot,
      env: cleanEnv({ BASELINE_PORT: String(baselinePort), BASELINE_FILE: file, BASELINE_CHECK_BASE64: Buffer.from(JSON.stringify(check)).toString('base64') }),
    });
    children.push(baseline);
    const baselineBase = `http://127.0.0.1:${baselinePort}`;
    await waitForHttp(`${baselineBase}/package`, baseline, 30_000);

    const expectedSize = packageMb * 1024 * 1024;
    const fleetdDownload = () => downloadBatch(check.url, expectedSize, sha256, node.child);
    const bareDownload = () => downloadBatch(`${baselineBase}/package`, expectedSize, sha256, baseline);
    log(`warming up: ${Math.min(devices, 10)} downloads each`);
    await downloadBatch(check.url, expectedSize, sha256, node.child, Math.min(devices, 10));
    await downloadBatch(`${baselineBase}/package`, expectedSize, sha256, baseline, Math.min(devices, 10));
    const bareRuns: Batch[] = [];
    const fleetdRuns: Batch[] = [];
    // Interleaved, so that a neighbour slowing the machine for a while slows both alike.
    for (const [title, batch, runs] of [
      ['bare node:http', bareDownload, bareRuns],
      ['fleetd', fleetdDownload, fleetdRuns],
      ['fleetd', fleetdDownload, fleetdRuns],
      ['bare node:http', bareDownload, bareRuns],
    ] as const) {
      log(`${devices} downloads at once from ${title}`);
      runs.push(await batch());
    }
    const rate = (runs: Batch[]) => runs.reduce((sum, r) => sum + r.bytes, 0) / runs.reduce((sum, r) => sum + r.seconds, 0);
    const bareRate = rate(bareRuns);
    const fleetdRate = rate(fleetdRuns);
    const downloadRatio = fleetdRate / bareRate;
    const startRssMb = rssMb(node.child.process.pid) ?? 0;
    const peak = (runs: Batch[]) => Math.max(...runs.map((r) => r.peakRssMb ?? 0));
    const memoryBounded = peak(fleetdRuns) - startRssMb < memoryBoundMb;

    const body = JSON.stringify({ version: 'v1', deviceType });
    const [bareChecks, fleetdChecks] = await measure(
      [
        { title: 'bare node:http', url: `${baselineBase}/check`, method: 'POST', body, headers: async () => ({ 'content-type': 'application/json' }), child: baseline },
        {
          title: 'fleetd update check',
          url: `${node.base}/api/devices/self/update-check`,
          method: 'POST',
          body,
          headers: async () => ({ 'content-type': 'application/json', authorization: `Bearer ${setup.deviceKey}` }),
          child: node.child,
        },
      ],
      settings,
      log,
    );
    const checkRatio = fleetdChecks!.requestsPerSecond / bareChecks!.requestsPerSecond;

    const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
    const verdict = (ratio: number, goal: number) => (ratio >= goal ? 'PASS' : 'FAIL');
    process.stdout.write(
      `\n${table(
        [`${devices} × ${packageMb} MiB at once`, 'MiB/s', 'peak RSS MiB', 'ratio', `≥ ${downloadTarget}`],
        [
          ['bare node:http static file', mib(bareRate), String(Math.round(peak(bareRuns))), '', ''],
          ['fleetd signed link', mib(fleetdRate), String(Math.round(peak(fleetdRuns))), downloadRatio.toFixed(2), verdict(downloadRatio, downloadTarget)],
        ],
      )}\n` +
        `(every download was checked for its size, a sample for its sha256; fleetd's RSS was ${startRssMb.toFixed(0)} MiB before the batches,` +
        ` bounded means less than ${memoryBoundMb} MiB more at the peak: ${memoryBounded ? 'yes' : 'NO'})\n\n` +
        `${table(
          ['update checks', 'req/s', 'requests', 'p99 ms', 'server CPU µs/req', 'ratio', `≥ ${checkTarget}`],
          [bareChecks!, fleetdChecks!].map((r, i) => [
            r.title,
            r.requestsPerSecond.toFixed(0),
            String(r.total),
            r.p99.toFixed(0),
            r.serverCpuPerRequest === undefined ? '-' : r.serverCpuPerRequest.toFixed(0),
            i === 0 ? '' : checkRatio.toFixed(2),
            i === 0 ? '' : verdict(checkRatio, checkTarget),
          ]),
        )}\n` +
        `(every update check answered 200 with a package waiting; the baseline answers the same bytes without work)\n`,
    );
    return { targetsMet: downloadRatio >= downloadTarget && checkRatio >= checkTarget && memoryBounded };
  } finally {
    for (const child of children.reverse()) await child.stop(10_000);
    removeTempDir(data);
  }
}

async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  const chunk = 1024 * 1024;
  for (let written = 0; written < size; written += chunk) {
    const bytes = randomBytes(Math.min(chunk, size - written));
    hash.update(bytes);
    if (!out.write(bytes)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  out.end();
  await finished(out);
  return hash.digest('hex');
}

/** An admin uploads the package; a device of a group whose policy targets it gets a key. */
async function prepareFleet(base: string, file: string): Promise<{ deviceKey: string }> {
  const token = (await callApi<{ accessToken: string }>(base, 'POST', '/api/auth/login', { body: benchAdmin })).accessToken;
  const form = new FormData();
  form.set('version', 'v2');
  form.set('deviceType', deviceType);
  form.set('file', await openAsBlob(file), 'package.bin');
  const upload = await fetch(`${base}/api/orgs/default/packages`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form });
  if (upload.status !== 201) throw new Error(`the package upload answered ${upload.status}: ${await upload.text()}`);
  const device = await callApi<{ id: string }>(base, 'POST', '/api/orgs/default/devices', { token, body: { name: 'bench-device' } });
  const key = await callApi<{ key: string }>(base, 'POST', '/api/orgs/default/api-keys', { token, body: { name: 'bench-device', deviceId: device.id } });
  const group = await callApi<{ id: string }>(base, 'POST', '/api/orgs/default/groups', { token, body: { name: 'bench-group' } });
  await callApi(base, 'POST', `/api/orgs/default/groups/${group.id}/members`, { token, body: { deviceIds: [device.id] } });
  await callApi(base, 'PUT', `/api/orgs/default/groups/${group.id}/update-policy`, { token, body: { policy: 'exact_match', targetVersion: 'v2' } });
  return { deviceKey: key.key };
}

async function updateCheck(base: string, deviceKey: string): Promise<{ url: string; sha256: string }> {
  const response = await fetch(`${base}/api/devices/self/update-check`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${deviceKey}` },
    body: JSON.stringify({ version: 'v1', deviceType }),
  });
  if (response.status !== 200) throw new Error(`the update check answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as { url: string; sha256: string };
}

/**
 * `count` downloads of `url` at once, each on its own connection, every one checked for its size and
 * the first few for their sha256 (hashing all would measure the client's CPU, not the server).
 */
async function downloadBatch(url: string, size: number, sha256: string, server: Child, count = devices): Promise<Batch> {
  let peakRssMb = rssMb(server.process.pid) ?? 0;
  const sampler = setInterval(() => (peakRssMb = Math.max(peakRssMb, rssMb(server.process.pid) ?? 0)), 100);
  const started = performance.now();
  try {
    await Promise.race([Promise.all(Array.from({ length: count }, (_, i) => download(url, size, i < 3 ? sha256 : undefined))), server.exited]);
  } finally {
    clearInterval(sampler);
  }
  return { bytes: size * count, seconds: (performance.now() - started) / 1000, peakRssMb };
}

function download(url: string, size: number, sha256?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent: false, timeout: 120_000 }, (response: IncomingMessage) => {
      if (response.statusCode !== 200) {
        response.resume();
        reject(new Error(`GET ${url} answered ${response.statusCode}`));
        return;
      }
      const hash = sha256 ? createHash('sha256') : undefined;
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        hash?.update(chunk);
      });
      response.once('error', reject);
      response.once('end', () => {
        if (received !== size) reject(new Error(`GET ${url} gave ${received} bytes, not ${size}`));
        else if (hash && hash.digest('hex') !== sha256) reject(new Error(`GET ${url} gave other bytes than the package`));
        else resolve();
      });
    });
    request.once('timeout', () => request.destroy(new Error(`GET ${url} timed out`)));
    request.once('error', reject);
  });
}

/** Resident memory of a process in MiB, from /proc (Linux); undefined elsewhere. */
function rssMb(pid: number | undefined): number | undefined {
  if (pid === undefined || process.platform !== 'linux') return undefined;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}
