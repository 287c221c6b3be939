import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { WebSocket, type ClientOptions } from 'ws';
import { attachWebSockets, type WebSocketEndpoint, type WebSocketServer } from '../../src/http/websocket.ts';
import { HubMetrics } from '../../src/hub/metrics.ts';
import type { SocketLimits } from '../../src/hub/socket.ts';
import { recordingLogger } from '../helpers/logger.ts';

export const testLimits: SocketLimits = { maxFrameBytes: 64 * 1024, messagesPerMinute: 10_000, sendQueueBytes: 1024 * 1024, pingIntervalMs: 60_000, missedPongs: 2 };

export interface WsHarness {
  /** ws://127.0.0.1:<port> */
  url: string;
  port: number;
  registry: Registry;
  wss: WebSocketServer;
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** A bare node:http server on a free port serving `endpoints` through attachWebSockets, as the API server would. */
export async function startWebSockets(endpoints: WebSocketEndpoint<any>[], options: { limits?: Partial<SocketLimits>; trustProxy?: boolean } = {}): Promise<WsHarness> {
  const registry = new Registry();
  const { logger, entries } = recordingLogger('debug');
  const server = createServer((_req, res) => res.writeHead(404).end());
  const wss = attachWebSockets(server, endpoints, {
    limits: { ...testLimits, ...options.limits },
    metrics: new HubMetrics(registry),
    logger,
    trustProxy: options.trustProxy ?? false,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    port,
    registry,
    wss,
    logs: entries,
    async close() {
      await wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A client connection once open; rejects when the upgrade is refused. */
export function connect(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** How the server answered an upgrade it refused: status, headers and the JSON body. */
export function refusal(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: any }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.on('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) }));
    });
  });
}

export function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve({ code: -1, reason: 'already closed' });
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
}

export const upgradeHeaders = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };

/** An upgrade made by hand, for what the `ws` client would not send or would hide: the response head. */
export function rawUpgrade(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; socket?: Socket }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers });
    req.once('upgrade', (res, socket) => resolve({ status: res.statusCode ?? 0, headers: res.headers, socket }));
    req.once('response', (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    });
    req.once('error', reject);
    req.end();
  });
}

/** Writes `text` on a plain TCP connection and collects everything until the server ends it. */
export function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1', () => socket.write(text));
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
  });
}

/** Sum of a metric's values whose labels include `labels`. */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value)).reduce((sum, v) => sum + v.value, 0);
}

/** Resolves once `condition` holds, polling; fails after `timeoutMs`. */
export async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
