// HTTP benchmark: an authenticated GET of a small resource (GET /api/orgs/default) through fleetd,
// with an API key and with a JWT access token, against a bare node:http server answering the same
// JSON bytes, in the same run. Target: fleetd serves at least half the bare server's requests/s.
//
// fleetd, the bare server and the load generator (autocannon) are child processes of their own, so
// none shares another's event loop. fleetd runs as shipped: `node bin/fleetd.js serve`
// on SQLite in a temporary folder, with the admin made by `fleetd admin create`.
import { join } from 'node:path';
import { benchAdmin, type Benchmark, callApi, type Child, cleanEnv, freePort, type LoadResult, makeTempDir, measure, removeTempDir, repoRoot, type Settings, startChild, startFleetdNode, table, waitForHttp } from './support.ts';

const target = 0.5;
const resourcePath = '/api/orgs/default';
const baselineScript = join(repoRoot, 'bench', 'baseline-http.ts');

export const benchmark: Benchmark = {
  name: 'http',
  description: 'authenticated GET /api/orgs/default through fleetd (API key, JWT) vs a bare node:http server',
  // Three targets' warm-ups and rounds (each run may overrun by 30 s), plus start-up, admin creation and shutdown.
  timeLimitMs: (s) => (3 * (s.warmup + s.duration + 30 * (s.rounds + 1)) + 120) * 1000,
  run,
};

async function run(settings: Settings): Promise<{ targetsMet: boolean }> {
  const data = makeTempDir('fleetd-bench-');
  const children: Child[] = [];
  try {
    const common = ['--data', data, '--log-level', 'warn'];
    // The admin first, with the CLI as an operator would; then the server on the same data folder.
    const { child: fleetd, base: fleetdUrl } = await startFleetdNode('fleetd', data, common, [], settings);
    children.push(fleetd);

    const login = async () => (await callApi<{ accessToken: string }>(fleetdUrl, 'POST', '/api/auth/login', { body: benchAdmin })).accessToken;
    const created = await callApi<{ key: string }>(fleetdUrl, 'POST', '/api/orgs/default/api-keys', { token: await login(), body: { name: 'bench' } });
    const apiKey = created.key;

    // The bytes fleetd answers are the bytes the bare server answers.
    const bodyResponse = await fetch(fleetdUrl + resourcePath, { headers: { authorization: `Bearer ${apiKey}` } });
    const body = Buffer.from(await bodyResponse.arrayBuffer());
    if (bodyResponse.status !== 200) throw new Error(`GET ${resourcePath} with the API key answered ${bodyResponse.status}: ${body.toString()}`);
    const expectBody = body.toString('utf8');

    const baselinePort = await freePort();
    const baseline = startChild('baseline-http', process.execPath, ['--import', 'tsx', baselineScript], {
      cwd: repoRoot,
      env: cleanEnv({ BASELINE_PORT: String(baselinePort), BASELINE_PATH: resourcePath, BASELINE_HEADER: 'authorization', BASELINE_BODY_BASE64: body.toString('base64') }),
    });
    children.push(baseline);
    const baselineUrl = `http://127.0.0.1:${baselinePort}${resourcePath}`;
    await waitForHttp(baselineUrl, baseline, 30_000, { authorization: 'Bearer x' });

    // Both servers stay up: the rounds alternate between them (see `measure`).
    const fleetdResource = fleetdUrl + resourcePath;
    const [bare, withKey, withJwt] = (await measure(
      [
        { title: 'bare node:http', url: baselineUrl, headers: async () => ({ authorization: `Bearer ${apiKey}` }), expectBody, child: baseline },
        { title: 'fleetd + API key', url: fleetdResource, headers: async () => ({ authorization: `Bearer ${apiKey}` }), expectBody, child: fleetd },
        // A fresh access token for each run, so that it outlives the run whatever BENCH_DURATION is (its TTL is 15 min).
        { title: 'fleetd + JWT', url: fleetdResource, headers: async () => ({ authorization: `Bearer ${await login()}` }), expectBody, child: fleetd },
      ],
      settings,
      (line) => process.stdout.write(`  ${line}\n`),
    )) as [LoadResult, LoadResult, LoadResult];

    const row = (r: LoadResult, ratio?: number) => [
      r.title,
      r.requestsPerSecond.toFixed(0),
      String(r.total),
      r.p99.toFixed(0),
      r.serverCpuPerRequest === undefined ? '-' : r.serverCpuPerRequest.toFixed(0),
      ratio === undefined ? '' : ratio.toFixed(2),
      ratio === undefined ? '' : ratio >= target ? 'PASS' : 'FAIL',
    ];
    const keyRatio = withKey.requestsPerSecond / bare.requestsPerSecond;
    const jwtRatio = withJwt.requestsPerSecond / bare.requestsPerSecond;
    process.stdout.write(
      `\n${table(['GET ' + resourcePath, 'req/s', 'requests', 'p99 ms', 'server CPU µs/req', 'ratio', `≥ ${target}`], [row(bare), row(withKey, keyRatio), row(withJwt, jwtRatio)])}\n` +
        `(ratio = fleetd req/s ÷ bare node:http req/s; every response was 200 with the same ${body.length}-byte body;\n` +
        ` server CPU = user+system CPU of the server process per response, steadier than req/s on a busy machine)\n`,
    );
    return { targetsMet: keyRatio >= target && jwtRatio >= target };
  } finally {
    // Reverse order; the server gets SIGTERM so a --cpu-prof profile is written.
    for (const child of children.reverse()) await child.stop(10_000);
    removeTempDir(data);
  }
}
