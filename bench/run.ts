// Runs the benchmarks: `npm run bench` runs all of them, `npm run bench -- http` those whose name
// contains one of the arguments. Exits 1 when a benchmark cannot be run (error, wrong responses,
// time limit); a missed target is reported as FAIL and exits 1 only with BENCH_STRICT=1.
//
// Settings (environment): BENCH_DURATION seconds measured per target (10), BENCH_WARMUP seconds
// of warm-up per target (2), BENCH_ROUNDS interleaved rounds the measured seconds are split into
// (2), BENCH_CONNECTIONS (50), BENCH_CPU_PROF=DIR to write CPU profiles of the fleetd children to DIR,
// BENCH_RELAY_PAGES pages watching the relayed device (10).
import { availableParallelism, cpus, loadavg, platform, release } from 'node:os';
import { busyCpus, cleanUp, settingsFromEnv, within, type Benchmark, type Settings } from './support.ts';

/** Every benchmark, in the order they run; each is a module of bench/ exporting `benchmark`. */
const modules: Array<{ name: string; load: () => Promise<{ benchmark: Benchmark }> }> = [
  { name: 'http', load: () => import('./http.ts') },
  { name: 'relay', load: () => import('./relay.ts') },
  { name: 'ingest', load: () => import('./ingest.ts') },
  { name: 'ota', load: () => import('./ota.ts') },
];

// Children and temporary folders never outlive the runner, however it ends.
process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping\n`);
    cleanUp();
    process.exit(130);
  });
}

async function main(argv: string[]): Promise<number> {
  const filters = argv.filter((a) => a !== '--');
  const selected = modules.filter((m) => filters.length === 0 || filters.some((f) => m.name.includes(f)));
  if (selected.length === 0) {
    process.stderr.write(`bench: no benchmark matches ${filters.join(' ')}; known: ${modules.map((m) => m.name).join(', ')}\n`);
    return 2;
  }
  let settings: Settings;
  try {
    settings = settingsFromEnv();
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).message}\n`);
    return 2;
  }
  const strict = process.env.BENCH_STRICT === '1';
  const summary: string[] = [];
  // Figures only compare within one run; these say what the run had to work with.
  const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
  process.stdout.write(
    `machine: ${availableParallelism()} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${platform()} ${release()}, node ${process.version}; ` +
      `load average ${load()}\nsettings: per target ${settings.warmup} s warm-up, then ${settings.duration} s measured in ${settings.rounds} interleaved rounds; ${settings.connections} connections\n`,
  );
  // A load generator and a server want two CPUs: other work taking them makes req/s noise.
  const othersBusy = await busyCpus();
  if (othersBusy > Math.max(0.5, availableParallelism() - 2)) {
    process.stdout.write(`warning: the machine is busy (other work kept ${othersBusy.toFixed(1)} of ${availableParallelism()} CPUs busy just now): req/s and ratios are unreliable, the server CPU µs/req column less so\n`);
  }
  let exitCode = 0;
  for (const entry of selected) {
    const started = Date.now();
    try {
      const { benchmark } = await entry.load();
      process.stdout.write(`\n== ${benchmark.name}: ${benchmark.description}\n`);
      const { targetsMet } = await within(benchmark.timeLimitMs(settings), `benchmark ${benchmark.name}`, benchmark.run(settings));
      summary.push(`${entry.name}: ${targetsMet ? 'targets met' : 'TARGET MISSED'} (${((Date.now() - started) / 1000).toFixed(0)} s; load average after: ${load()})`);
      if (!targetsMet && strict) exitCode = 1;
    } catch (error) {
      summary.push(`${entry.name}: DID NOT RUN: ${(error as Error).message.split('\n')[0]}`);
      process.stderr.write(`\nbench ${entry.name} failed: ${(error as Error).stack ?? String(error)}\n`);
      exitCode = 1;
    } finally {
      cleanUp();
    }
  }
  process.stdout.write(`\n${summary.join('\n')}\n`);
  return exitCode;
}

process.exitCode = await main(process.argv.slice(2));
// Nothing the benchmarks started may keep the runner alive.
process.exit();
