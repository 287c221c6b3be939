// The bare relay the relay benchmark compares fleetd with: Paikea's relay reduced to its core, on
// the `ws` package. The URL path is the channel; a connection with `?role=device` is the channel's
// device (a newer one replaces it), any other connection is a page. Device frames go to every page
// of the channel, page frames to the device, both unchanged (text as text, binary as binary).
// No authentication, no logging, no limits. A plain GET /healthz answers 200, for readiness.
//
//   BASELINE_PORT=... node --import tsx bench/baseline-relay.ts
import { createServer } from 'node:http';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';

const port = Number(process.env.BASELINE_PORT);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('baseline-relay: BASELINE_PORT is required\n');
  process.exit(2);
}

interface Channel {
  device: WebSocket | undefined;
  pages: Set<WebSocket>;
}

const channels = new Map<string, Channel>();

const server = createServer((request, response) => {
  const ok = request.method === 'GET' && request.url === '/healthz';
  response.writeHead(ok ? 200 : 404, { 'content-type': 'text/plain', 'content-length': 2 }).end(ok ? 'ok' : 'no');
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });

server.on('upgrade', (request, socket, head) => {
  const url = new URL(request.url ?? '/', 'http://relay');
  const name = url.pathname;
  const isDevice = url.searchParams.get('role') === 'device';
  wss.handleUpgrade(request, socket, head, (ws) => {
    let channel = channels.get(name);
    if (!channel) {
      channel = { device: undefined, pages: new Set() };
      channels.set(name, channel);
    }
    const mine = channel;
    const forget = () => {
      if (mine.device === undefined && mine.pages.size === 0 && channels.get(name) === mine) channels.delete(name);
    };
    if (isDevice) {
      const older = mine.device;
      mine.device = ws;
      older?.close(4000, 'replaced');
      ws.on('message', (data: RawData, isBinary: boolean) => {
        for (const page of mine.pages) page.send(data as Buffer, { binary: isBinary });
      });
      ws.on('close', () => {
        if (mine.device === ws) mine.device = undefined;
        forget();
      });
    } else {
      mine.pages.add(ws);
      ws.on('message', (data: RawData, isBinary: boolean) => {
        mine.device?.send(data as Buffer, { binary: isBinary });
      });
      ws.on('close', () => {
        mine.pages.delete(ws);
        forget();
      });
    }
    ws.on('error', () => ws.terminate());
  });
});

server.listen({ port, host: '127.0.0.1' }, () => process.stderr.write(`baseline-relay listening on ws://127.0.0.1:${port}/<channel>\n`));

const stop = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
  // Upgraded sockets are no longer the HTTP server's to close.
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
