import { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer as WsServer } from 'ws';
import type { Config } from '../config/keys.ts';
import { FleetError } from '../core/errors.ts';
import { looksLikeApiKey } from '../core/secrets.ts';
import type { ConnectionKind, HubMetrics } from '../hub/metrics.ts';
import { closeCodes, FleetSocket, type SocketLimits } from '../hub/socket.ts';
import type { Logger } from '../log.ts';
import type { Credentials } from '../services/authenticator.ts';

export interface UpgradeRequest {
  /** The parsed request URL (pathname, searchParams). */
  url: URL;
  headers: IncomingHttpHeaders;
  /** Honours trustProxy like Fastify. */
  remoteAddress: string;
  /**
   * Credentials found in the Authorization header, in a `Sec-WebSocket-Protocol` entry
   * `bearer.<token>` or a bare `fk_…` API key, or in the query `?token=`. Passed to services.authenticator.
   */
  credentials: Credentials;
}

export interface WebSocketEndpoint<A = unknown> {
  /** 'shelly' | 'devices' | 'clients' | 'relay' | …: in logs and metrics. */
  name: string;
  /** Metrics label: what connects here, or, for an endpoint serving both, which one a connection is. */
  kind: ConnectionKind | ((auth: A) => ConnectionKind);
  match(pathname: string): boolean;
  /** Limits of this endpoint's connections that differ from the configured ones (a shell's terminal output comes in many small frames). */
  limits?: Partial<SocketLimits>;
  /** Runs before the upgrade; a thrown FleetError answers the upgrade with its HTTP status and the JSON error body (401/403/404/429…). */
  authenticate?(request: UpgradeRequest): Promise<A>;
  /** After the upgrade. */
  accept(socket: FleetSocket, request: UpgradeRequest, auth: A): void;
}

export interface WebSocketServer {
  /** Connections open now. */
  readonly size: number;
  /** Closes every connection with 1001 'server shutting down' and refuses new ones. */
  close(): Promise<void>;
}

export interface WebSocketOptions {
  limits: SocketLimits;
  metrics: HubMetrics;
  logger: Logger;
  trustProxy: boolean;
}

export function limitsFromConfig(config: Config): SocketLimits {
  return {
    maxFrameBytes: config.wsMaxFrame,
    messagesPerMinute: config.wsRateLimit,
    sendQueueBytes: config.wsSendQueue,
    pingIntervalMs: config.wsPingInterval * 1000,
    missedPongs: 2,
  };
}

/** RFC 6455's Sec-WebSocket-Key: 16 bytes in base64. */
const keyPattern = /^[+/0-9A-Za-z]{22}==$/;
/** An HTTP token (RFC 9110), what each subprotocol name must be. */
const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const isCredentialProtocol = (protocol: string): boolean => protocol.toLowerCase().startsWith('bearer.') || looksLikeApiKey(protocol);

/**
 * Serves WebSocket upgrades on the HTTP server the API listens on: each upgrade goes to the first
 * endpoint whose path matches, which may refuse it with an HTTP error (same body as the REST API)
 * before any WebSocket exists. Accepted connections become FleetSockets with the configured limits.
 */
export function attachWebSockets(server: Server, endpoints: WebSocketEndpoint<any>[], options: WebSocketOptions): WebSocketServer {
  const { limits, metrics, trustProxy } = options;
  const logger = options.logger.child({ component: 'websocket' });
  const wss = new WsServer({
    noServer: true,
    maxPayload: limits.maxFrameBytes,
    perMessageDeflate: false,
    clientTracking: false,
    // Echo the first protocol that is not a credential: a token must never come back in a response header.
    handleProtocols: (protocols) => [...protocols].find((p) => !isCredentialProtocol(p)) ?? false,
  });
  /** Open connections, each with the promise of its end. */
  const sockets = new Map<FleetSocket, Promise<void>>();
  let shuttingDown = false;

  const upgrade = async (req: IncomingMessage, socket: Duplex, head: Buffer, endpoint: WebSocketEndpoint, request: UpgradeRequest): Promise<void> => {
    let auth: unknown;
    if (endpoint.authenticate) {
      try {
        auth = await endpoint.authenticate(request);
      } catch (error) {
        if (error instanceof FleetError) metrics.refused(endpoint.name, 'auth');
        refuse(socket, error, { endpoint: endpoint.name, remoteAddress: request.remoteAddress });
        return;
      }
    }
    if (socket.destroyed) return;
    if (shuttingDown) {
      refuse(socket, new FleetError('unavailable', 'The server is shutting down'), { endpoint: endpoint.name });
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      socket.removeListener('error', onUpgradeError);
      const kind = typeof endpoint.kind === 'function' ? endpoint.kind(auth) : endpoint.kind;
      const fleet = new FleetSocket(ws, { endpoint: endpoint.name, kind, remoteAddress: request.remoteAddress, limits: { ...limits, ...endpoint.limits }, metrics, logger });
      sockets.set(
        fleet,
        new Promise((resolve) =>
          fleet.onClose(() => {
            sockets.delete(fleet);
            resolve();
          }),
        ),
      );
      try {
        endpoint.accept(fleet, request, auth);
      } catch (error) {
        logger.error({ err: error, endpoint: endpoint.name }, 'WebSocket endpoint failed to accept a connection');
        fleet.close(closeCodes.internal, 'internal error');
      }
    });
  };

  /** Writes the HTTP refusal of an upgrade: the API's error body, then the connection ends. */
  const refuse = (socket: Duplex, error: unknown, context: Record<string, unknown>): void => {
    const fleet = error instanceof FleetError ? error : new FleetError('internal', 'Internal server error', { cause: error });
    if (fleet.code === 'internal') logger.error({ err: error, ...context }, 'WebSocket upgrade failed');
    else logger.info({ code: fleet.code, message: fleet.message, ...context }, 'WebSocket upgrade refused');
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const body = JSON.stringify({ error: { code: fleet.code, message: fleet.message, ...(fleet.details !== undefined && { details: fleet.details }) } });
    const status = fleet.httpStatus;
    const head = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`, 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close'];
    if (fleet.retryAfter !== undefined) head.push(`Retry-After: ${fleet.retryAfter}`);
    socket.once('finish', () => socket.destroy());
    socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Node leaves an upgraded socket without an error listener: a reset would otherwise crash the process.
    socket.on('error', onUpgradeError);
    try {
      const url = parseUrl(req.url);
      if (!url) return refuse(socket, new FleetError('bad_request', 'Malformed request URL'), {});
      const endpoint = endpoints.find((e) => e.match(url.pathname));
      if (!endpoint) return refuse(socket, new FleetError('not_found', `No WebSocket endpoint at ${url.pathname}`), {});
      if (shuttingDown) return refuse(socket, new FleetError('unavailable', 'The server is shutting down'), { endpoint: endpoint.name });
      const problem = handshakeProblem(req);
      const protocols = parseProtocols(req.headers['sec-websocket-protocol']);
      if (problem || !protocols) return refuse(socket, new FleetError('bad_request', problem ?? 'Invalid Sec-WebSocket-Protocol header'), { endpoint: endpoint.name });
      const remoteAddress = clientAddress(req, trustProxy);
      const request: UpgradeRequest = { url, headers: req.headers, remoteAddress, credentials: { ...findCredentials(req, url, protocols), ip: remoteAddress } };
      upgrade(req, socket, head, endpoint, request).catch((error: unknown) => refuse(socket, error, { endpoint: endpoint.name }));
    } catch (error) {
      refuse(socket, error, {});
    }
  };
  const onUpgradeError = (error: Error): void => {
    logger.debug({ err: error }, 'connection failed during a WebSocket upgrade');
  };
  server.on('upgrade', onUpgrade);

  return {
    get size() {
      return sockets.size;
    },
    async close() {
      // The upgrade listener stays: later upgrades are answered 503 rather than taken for plain requests.
      shuttingDown = true;
      const waiting = [...sockets.values()];
      // Each socket cuts the connection itself when the peer does not answer the close in time.
      for (const socket of sockets.keys()) socket.close(closeCodes.goingAway, 'server shutting down');
      await Promise.all(waiting);
      wss.close();
    },
  };
}

function parseUrl(text: string | undefined): URL | undefined {
  try {
    return new URL(text ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

/** The checks `ws` makes, done first so that nothing is authenticated for a request that cannot be upgraded. */
function handshakeProblem(req: IncomingMessage): string | undefined {
  if (req.method !== 'GET') return 'A WebSocket upgrade must be a GET request';
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') return 'Only WebSocket upgrades are served';
  const key = req.headers['sec-websocket-key'];
  if (key === undefined || !keyPattern.test(key)) return 'Missing or invalid Sec-WebSocket-Key header';
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') return 'Missing or invalid Sec-WebSocket-Version header';
  return undefined;
}

/** The offered subprotocols in order, or undefined when the header is malformed (as `ws` would refuse it). */
function parseProtocols(header: string | undefined): string[] | undefined {
  if (header === undefined) return [];
  const protocols = header.split(',').map((p) => p.trim());
  if (protocols.some((p) => !tokenPattern.test(p)) || new Set(protocols).size !== protocols.length) return undefined;
  return protocols;
}

/**
 * The bearer credential of an upgrade. Browsers cannot set headers on a WebSocket, so a token may also
 * come as a subprotocol or in the query. Cookies are not taken: a page of any site could use them.
 */
function findCredentials(req: IncomingMessage, url: URL, protocols: string[]): Credentials {
  const header = req.headers.authorization;
  if (header !== undefined) return { authorization: header };
  for (const protocol of protocols) {
    if (protocol.toLowerCase().startsWith('bearer.')) return { authorization: `Bearer ${protocol.slice('bearer.'.length)}` };
    if (looksLikeApiKey(protocol)) return { authorization: `Bearer ${protocol}` };
  }
  const token = url.searchParams.get('token');
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** The client's address as Fastify sees it: behind a trusted proxy, the first X-Forwarded-For entry. */
function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  const direct = req.socket.remoteAddress ?? 'unknown';
  if (!trustProxy) return direct;
  const forwarded = req.headers['x-forwarded-for'];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
  return first || direct;
}
