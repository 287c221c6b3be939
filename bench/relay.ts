// Relay benchmark: one device fanning Paikea-sized telemetry frames out to N pages on one channel
// of /api/relay, through fleetd with its message log on (the default) and off, against a bare
// relay on the `ws` package (bench/baseline-relay.ts), in the same run. Target: fleetd delivers at
// least half the bare relay's frames/s.
//
// The servers are child processes; the device and the pages are WebSocket clients in this process.
// The device sends as fast as the pages keep up: it stops while `window` frames have not yet reached
// every page, and goes on once fewer than `window - refill` are out. Every page must receive every
// frame, in order; latency runs from the frame's `t` stamp (set when the device sends it) to its
// receipt, on this machine's clock. fleetd runs as shipped (`bin/fleetd.js serve` on SQLite in a
// temporary folder), except for `--ws-rate-limit 1000000`: the default (600 a minute) would close
// the device after its first seconds; the limit is still checked on every frame.
//
// BENCH_RELAY_PAGES: pages on the channel (10).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { WebSocket, type RawData } from 'ws';
import { benchAdmin, type Benchmark, callApi, type Child, cleanEnv, cpuSeconds, freePort, makeTempDir, removeTempDir, repoRoot, type Settings, startChild, startFleetdNode, table, waitForHttp } from './support.ts';

const target = 0.5;
/** Frames sent but not yet received by every page, at most. */
const window = 1000;
/** The device goes on once this many of the window are free again (fewer, larger bursts). */
const refill = 100;
const channel = 'buoy-bench';
const baselineScript = join(repoRoot, 'bench', 'baseline-relay.ts');
/** A slice fails when no page receives anything for this long (a lost frame, a stuck server). */
const stallMs = 15_000;

export const benchmark: Benchmark = {
  name: 'relay',
  description: `one device fanning telemetry frames out to ${pagesFromEnv()} pages on /api/relay through fleetd (message log on, off) vs a bare ws relay`,
  // Three targets' warm-ups and rounds (each slice may take up to a stall longer to drain), plus start-up and shutdown.
  timeLimitMs: (s) => (3 * (s.warmup + s.duration + (stallMs / 1000) * (s.rounds + 1)) + 120) * 1000,
  run,
};

function pagesFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const text = env.BENCH_RELAY_PAGES;
  if (text === undefined || text === '') return 10;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > 1000) throw new Error(`BENCH_RELAY_PAGES=${text} must be a whole number from 1 to 1000`);
  return value;
}

// ---- the frames: `{"batt/main_v": 3.91, "seq": <n>, "t": <epoch ms, 0.1 ms>}`, about 60 bytes

const head = Buffer.from('{"batt/main_v": 3.91, "seq": ');
const middle = Buffer.from(', "t": ');
const now = () => performance.timeOrigin + performance.now();
const telemetry = (seq: number) => `{"batt/main_v": 3.91, "seq": ${seq}, "t": ${now().toFixed(1)}}`;
const sampleFrameBytes = Buffer.byteLength(telemetry(123456));

/** The `t` of the frame `parseTelemetry` read last. */
let parsedStamp = 0;

/**
 * The seq of a telemetry frame, its `t` in `parsedStamp`; -1 when the bytes are anything else.
 * Read from the bytes directly: the pages of this process must not be the bottleneck.
 */
function parseTelemetry(bytes: Buffer): number {
  const length = bytes.length;
  if (length < head.length + middle.length + 3 || bytes.compare(head, 0, head.length, 0, head.length) !== 0) return -1;
  let i = head.length;
  let seq = 0;
  const seqStart = i;
  while (i < length && bytes[i]! >= 48 && bytes[i]! <= 57) seq = seq * 10 + (bytes[i++]! - 48);
  if (i === seqStart || bytes.compare(middle, 0, middle.length, i, i + middle.length) !== 0) return -1;
  i += middle.length;
  let stamp = 0;
  const stampStart = i;
  while (i < length && bytes[i]! >= 48 && bytes[i]! <= 57) stamp = stamp * 10 + (bytes[i++]! - 48);
  if (i < length && bytes[i] === 46) {
    let scale = 0.1;
    for (i++; i < length && bytes[i]! >= 48 && bytes[i]! <= 57; i++, scale /= 10) stamp += (bytes[i]! - 48) * scale;
  }
  if (i === stampStart || i !== length - 1 || bytes[i] !== 125) return -1;
  parsedStamp = stamp;
  return seq;
}

/** Latencies in 0.1 ms buckets up to a minute (longer ones count as a minute). */
class Histogram {
  readonly #counts = new Uint32Array(600_000);
  count = 0;

  add(ms: number): void {
    const bucket = Math.min(this.#counts.length - 1, Math.max(0, Math.floor(ms * 10)));
    this.#counts[bucket]! += 1;
    this.count += 1;
  }

  /** The upper bound of the bucket holding the p-quantile, in ms. */
  quantile(p: number): number {
    const rank = Math.max(1, Math.ceil(p * this.count));
    let seen = 0;
    for (let bucket = 0; bucket < this.#counts.length; bucket++) {
      seen += this.#counts[bucket]!;
      if (seen >= rank) return (bucket + 1) / 10;
    }
    return Number.NaN;
  }
}

interface Endpoint {
  url: string;
  headers: Record<string, string>;
}

interface SliceResult {
  delivered: number;
  seconds: number;
  /** Server CPU seconds over the slice, undefined off Linux. */
  serverCpu?: number;
  /** CPU seconds of this process (the device and the pages) over the slice. */
  generatorCpu: number;
}

/** Opens a client; `onMessage` is attached at once, as a frame may come with the handshake's answer. */
function connect(what: string, endpoint: Endpoint, onMessage: (data: RawData, isBinary: boolean) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // The pages need not check the UTF-8 of what they receive: the servers checked it when the device sent it.
    const ws = new WebSocket(endpoint.url, { headers: endpoint.headers, perMessageDeflate: false, skipUTF8Validation: true });
    ws.on('message', onMessage);
    const refused = (error: Error) => reject(new Error(`${what} could not connect to ${endpoint.url}: ${error.message}`));
    ws.once('error', refused);
    ws.once('open', () => {
      ws.off('error', refused);
      resolve(ws);
    });
  });
}

/** One relay under load: its device and pages, connected once, driven in slices. */
class Fanout {
  device!: WebSocket;
  readonly pages: WebSocket[] = [];
  /** Frames each page received, in order (frame seq n is the n-th). */
  readonly received: number[];
  /** Whether each page was last told the device is online (fleetd's presence frames). */
  readonly online: boolean[];
  readonly histogram = new Histogram();
  readonly failed: Promise<never>;
  sent = 0;
  #fail!: (error: Error) => void;
  #failure: Error | undefined;
  #closing = false;
  #recording = false;
  #sliceDelivered = 0;
  /** performance.now() of the last frame a page received. */
  #lastReceipt = 0;
  #waiter: { condition: () => boolean; resolve: () => void } | undefined;

  constructor(
    readonly title: string,
    readonly child: Child,
    pageCount: number,
  ) {
    this.received = new Array<number>(pageCount).fill(0);
    this.online = new Array<boolean>(pageCount).fill(false);
    this.failed = new Promise<never>((_resolve, reject) => {
      this.#fail = reject;
    });
    this.failed.catch(() => {});
    child.exited.catch((error: Error) => this.fail(error));
  }

  fail(error: Error): void {
    if (this.#failure || this.#closing) return;
    this.#failure = error;
    this.#fail(error);
  }

  /** The device first, then the pages; resolves once every page hears the device (fleetd: presence online). */
  async open(device: Endpoint, page: Endpoint, presence: boolean): Promise<void> {
    this.device = await this.#race(connect(`${this.title} device`, device, (data) => this.fail(new Error(`${this.title}: the device received ${String(data).slice(0, 200)}`))));
    this.#watch(this.device, 'the device');
    for (let i = 0; i < this.received.length; i++) {
      const ws = await this.#race(connect(`${this.title} page ${i + 1}`, page, (data, isBinary) => this.#onPageFrame(i, data as Buffer, isBinary)));
      this.#watch(ws, `page ${i + 1}`);
      this.pages.push(ws);
      if (!presence) this.online[i] = true;
    }
    await this.#waitFor(() => this.online.every(Boolean), () => `every page to hear that the device is online (${this.online.filter(Boolean).length} of ${this.online.length} did)`);
  }

  /**
   * Load for `seconds`, then until every page has every frame sent. Latencies are recorded when
   * `record`; delivered frames are counted from the slice's start to the last receipt.
   */
  async slice(seconds: number, record: boolean): Promise<SliceResult> {
    const pid = this.child.process.pid;
    const cpuBefore = cpuSeconds(pid);
    const generatorBefore = process.cpuUsage();
    this.#recording = record;
    this.#sliceDelivered = 0;
    const start = performance.now();
    this.#lastReceipt = start;
    const end = start + seconds * 1000;
    const watchdog = setInterval(() => {
      if (performance.now() - this.#lastReceipt > stallMs) this.fail(new Error(`${this.title}: no page received anything for ${stallMs / 1000} s (${this.sent} frames sent, the slowest page has ${this.#slowest()})`));
    }, 1000);
    try {
      while (performance.now() < end) {
        let free = window - (this.sent - this.#slowest());
        while (free-- > 0) this.device.send(telemetry(++this.sent));
        await this.#waitFor(() => this.sent - this.#slowest() <= window - refill, 'the pages to catch up');
      }
      await this.#waitFor(() => this.#slowest() === this.sent, 'every page to receive every frame');
    } finally {
      clearInterval(watchdog);
      this.#recording = false;
    }
    const cpuAfter = cpuSeconds(pid);
    const generator = process.cpuUsage(generatorBefore);
    return {
      delivered: this.#sliceDelivered,
      seconds: (this.#lastReceipt - start) / 1000,
      serverCpu: cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined,
      generatorCpu: (generator.user + generator.system) / 1e6,
    };
  }

  close(): void {
    this.#closing = true;
    for (const ws of [this.device, ...this.pages]) ws?.terminate();
  }

  #slowest(): number {
    let least = Number.POSITIVE_INFINITY;
    for (const count of this.received) if (count < least) least = count;
    return least;
  }

  #onPageFrame(i: number, bytes: Buffer, isBinary: boolean): void {
    const seq = isBinary ? -1 : parseTelemetry(bytes);
    if (seq < 0) {
      this.#onOtherFrame(i, bytes, isBinary);
      return;
    }
    const due = this.received[i]! + 1;
    if (seq !== due) {
      this.fail(new Error(`${this.title}: page ${i + 1} received frame ${seq} where ${due} was due (a frame lost or reordered)`));
      return;
    }
    this.received[i] = due;
    this.#sliceDelivered += 1;
    this.#lastReceipt = performance.now();
    if (this.#recording) this.histogram.add(performance.timeOrigin + this.#lastReceipt - parsedStamp);
    const waiter = this.#waiter;
    if (waiter && waiter.condition()) {
      this.#waiter = undefined;
      waiter.resolve();
    }
  }

  /** fleetd tells pages the device's presence; anything else is wrong. */
  #onOtherFrame(i: number, bytes: Buffer, isBinary: boolean): void {
    const text = bytes.toString('utf8');
    let said: unknown;
    try {
      said = isBinary ? undefined : JSON.parse(text);
    } catch {
      said = undefined;
    }
    const presence = (said as { presence?: unknown } | undefined)?.presence;
    if (presence === 'online' || (presence === 'offline' && this.sent === 0)) {
      this.online[i] = presence === 'online';
      const waiter = this.#waiter;
      if (waiter && waiter.condition()) {
        this.#waiter = undefined;
        waiter.resolve();
      }
      return;
    }
    this.fail(new Error(`${this.title}: page ${i + 1} received an unexpected ${isBinary ? 'binary ' : ''}frame: ${text.slice(0, 200)}`));
  }

  #watch(ws: WebSocket, who: string): void {
    ws.on('close', (code, reason) => this.fail(new Error(`${this.title}: ${who}'s connection closed (${code} ${reason.toString()})`)));
    ws.on('error', (error) => this.fail(new Error(`${this.title}: ${who}'s connection failed: ${error.message}`)));
  }

  async #waitFor(condition: () => boolean, what: string | (() => string)): Promise<void> {
    if (condition()) return;
    const reached = new Promise<void>((resolve) => {
      this.#waiter = { condition, resolve };
    });
    let timer: NodeJS.Timeout | undefined;
    // The watchdog covers slices; this covers the rest (connecting, presence).
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.title}: waited ${(stallMs * 2) / 1000} s for ${typeof what === 'string' ? what : what()}`)), stallMs * 2);
    });
    try {
      await Promise.race([reached, this.failed, late]);
    } finally {
      clearTimeout(timer);
      this.#waiter = undefined;
    }
  }

  #race<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.failed]);
  }
}

interface Fleetd {
  child: Child;
  data: string;
  device: Endpoint;
  page: Endpoint;
}

/** A fleetd node on a fresh SQLite folder, with an admin, the channel's device and its key. */
async function startFleetd(name: string, extraArgs: string[], settings: Settings, children: Child[], dataDirs: string[]): Promise<Fleetd> {
  const data = makeTempDir('fleetd-bench-relay-');
  dataDirs.push(data);
  const common = ['--data', data, '--log-level', 'warn'];
  const { child, base } = await startFleetdNode(name, data, common, ['--ws-rate-limit', '1000000', ...extraArgs], settings);
  children.push(child);
  const port = new URL(base).port;
  // An access token lives 15 min: longer than any run; the pages connect once.
  const token = (await callApi<{ accessToken: string }>(base, 'POST', '/api/auth/login', { body: benchAdmin })).accessToken;
  const device = await callApi<{ id: string }>(base, 'POST', '/api/orgs/default/devices', { token, body: { name: 'bench buoy', externalId: channel } });
  const key = await callApi<{ key: string }>(base, 'POST', '/api/orgs/default/api-keys', { token, body: { name: 'bench buoy key', deviceId: device.id } });
  const url = `ws://127.0.0.1:${port}/api/relay/${channel}`;
  return { child, data, device: { url, headers: { authorization: `Bearer ${key.key}` } }, page: { url, headers: { authorization: `Bearer ${token}` } } };
}

async function startBaseline(children: Child[]): Promise<{ child: Child; device: Endpoint; page: Endpoint }> {
  const port = await freePort();
  const child = startChild('baseline-relay', process.execPath, ['--import', 'tsx', baselineScript], { cwd: repoRoot, env: cleanEnv({ BASELINE_PORT: String(port) }) });
  children.push(child);
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, child, 30_000);
  const url = `ws://127.0.0.1:${port}/${channel}`;
  return { child, device: { url: `${url}?role=device`, headers: {} }, page: { url, headers: {} } };
}

/** Resident memory of a process in MB, from /proc (Linux). */
function rssMb(pid: number | undefined): number | undefined {
  if (pid === undefined || process.platform !== 'linux') return undefined;
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Bytes of the message log files in a data folder (the current one and the rotated ones). */
function messageLogBytes(data: string): number {
  return readdirSync(data)
    .filter((name) => name.startsWith('messages.log'))
    .reduce((sum, name) => sum + statSync(join(data, name)).size, 0);
}

/** Lines fleetd's message log dropped, as it says when it closes (nothing said: none). */
function droppedLogLines(output: string): number {
  const line = output.split('\n').find((l) => l.includes('message log closed; lines were dropped'));
  const match = line ? /"dropped":(\d+)/.exec(line) : null;
  return match ? Number(match[1]) : 0;
}

async function run(settings: Settings): Promise<{ targetsMet: boolean }> {
  const pageCount = pagesFromEnv();
  const log = (line: string) => process.stdout.write(`  ${line}\n`);
  const children: Child[] = [];
  const dataDirs: string[] = [];
  const fanouts: Fanout[] = [];
  try {
    // All three start together; every child is known to the `finally` below whichever fails.
    const started = await Promise.allSettled([startBaseline(children), startFleetd('fleetd', [], settings, children, dataDirs), startFleetd('fleetd-log-off', ['--message-log', 'off'], settings, children, dataDirs)]);
    const failure = started.find((s) => s.status === 'rejected');
    if (failure) throw (failure as PromiseRejectedResult).reason;
    const [baseline, withLog, withoutLog] = started.map((s) => (s as PromiseFulfilledResult<{ child: Child; device: Endpoint; page: Endpoint }>).value) as [
      Awaited<ReturnType<typeof startBaseline>>,
      Fleetd,
      Fleetd,
    ];

    const targets = [
      { title: 'bare ws relay', server: baseline, presence: false },
      { title: 'fleetd (message log on)', server: withLog, presence: true },
      { title: 'fleetd --message-log off', server: withoutLog, presence: true },
    ];
    for (const t of targets) {
      const fanout = new Fanout(t.title, t.server.child, pageCount);
      fanouts.push(fanout);
      await fanout.open(t.server.device, t.server.page, t.presence);
    }
    log(`${pageCount} pages per channel, ${sampleFrameBytes}-byte text frames, at most ${window} frames in flight`);

    // As `measure` does: a warm-up each, then rounds in which each target gets its slice, the order rotating.
    const slice = settings.duration / settings.rounds;
    if (settings.warmup > 0) {
      for (const fanout of fanouts) {
        log(`warming up ${fanout.title} (${settings.warmup} s)`);
        await fanout.slice(settings.warmup, false);
      }
    }
    const runs = fanouts.map(() => [] as SliceResult[]);
    for (let round = 0; round < settings.rounds; round++) {
      for (let k = 0; k < fanouts.length; k++) {
        const i = (k + round) % fanouts.length;
        log(`round ${round + 1}/${settings.rounds}: ${fanouts[i]!.title} (${slice} s)`);
        runs[i]!.push(await fanouts[i]!.slice(slice, true));
      }
    }
    const rss = fanouts.map((f) => rssMb(f.child.process.pid));

    const results = fanouts.map((fanout, i) => {
      const mine = runs[i]!;
      const delivered = mine.reduce((sum, r) => sum + r.delivered, 0);
      const seconds = mine.reduce((sum, r) => sum + r.seconds, 0);
      const cpu = mine.every((r) => r.serverCpu !== undefined) ? mine.reduce((sum, r) => sum + r.serverCpu!, 0) : undefined;
      const generator = mine.reduce((sum, r) => sum + r.generatorCpu, 0);
      return {
        title: fanout.title,
        framesPerSecond: delivered / seconds,
        delivered,
        p50: fanout.histogram.quantile(0.5),
        p99: fanout.histogram.quantile(0.99),
        cpuPerFrame: cpu === undefined || delivered === 0 ? undefined : (cpu * 1e6) / delivered,
        rss: rss[i],
        generatorLoad: generator / seconds,
      };
    });
    for (const fanout of fanouts) fanout.close();
    // Stopped now, so that fleetd says whether its message log dropped lines.
    for (const child of [...children].reverse()) await child.stop(10_000);
    const dropped = droppedLogLines(withLog.child.output());
    const logBytes = messageLogBytes(withLog.data);

    const [bare, ...fleetd] = results as [(typeof results)[number], ...typeof results];
    const ratios = fleetd.map((r) => r.framesPerSecond / bare.framesPerSecond);
    const row = (r: (typeof results)[number], ratio?: number) => [
      r.title,
      r.framesPerSecond.toFixed(0),
      String(r.delivered),
      r.p50.toFixed(1),
      r.p99.toFixed(1),
      r.cpuPerFrame === undefined ? '-' : r.cpuPerFrame.toFixed(1),
      r.rss === undefined ? '-' : r.rss.toFixed(0),
      ratio === undefined ? '' : ratio.toFixed(2),
      ratio === undefined ? '' : ratio >= target ? 'PASS' : 'FAIL',
    ];
    const generatorNote = results.map((r) => `${r.title} ${(r.generatorLoad * 100).toFixed(0)} %`).join(', ');
    process.stdout.write(
      `\n${table(['relay, 1 device → ' + pageCount + ' pages', 'frames/s', 'frames', 'p50 ms', 'p99 ms', 'server CPU µs/frame', 'RSS MB', 'ratio', `≥ ${target}`], [row(bare), ...fleetd.map((r, i) => row(r, ratios[i]))])}\n` +
        `(frames/s = frames received, summed over the pages, per second; ratio = fleetd frames/s ÷ bare ws relay frames/s;\n` +
        ` every page received every frame in order; latency = send stamp to receipt with up to ${window} frames in flight, so mostly queueing;\n` +
        ` server CPU = user+system CPU of the server process per delivered frame; RSS at the end of the measured rounds;\n` +
        ` message log: ${(logBytes / 1e6).toFixed(0)} MB on disk at the end (it rotates), ${dropped === 0 ? 'no line dropped' : `${dropped} lines dropped (it could not keep up)`};\n` +
        ` this process (device and pages) was busy: ${generatorNote} of a CPU)\n`,
    );
    if (bare.generatorLoad > 0.9) process.stdout.write('note: the load generator used a whole CPU on the bare relay: its frames/s are a lower bound, the ratios upper bounds; compare the CPU µs/frame\n');
    return { targetsMet: ratios.every((r) => r >= target) };
  } finally {
    for (const fanout of fanouts) fanout.close();
    for (const child of children.reverse()) await child.stop(10_000);
    for (const dir of dataDirs) removeTempDir(dir);
  }
}
