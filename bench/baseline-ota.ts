// The bare node:http server the OTA benchmark compares fleetd with: GET /package streams one file
// from disk (as a static file server does), POST /check reads the request body and answers the
// same JSON bytes fleetd answered an update check with. No authentication, no database, no range.
//
//   BASELINE_PORT=... BASELINE_FILE=/path/to/package BASELINE_CHECK_BASE64=... node --import tsx bench/baseline-ota.ts
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { pipeline } from 'node:stream/promises';

const required = (name: string): string => {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`baseline-ota: ${name} is required\n`);
    process.exit(2);
  }
  return value;
};

const port = Number(required('BASELINE_PORT'));
const file = required('BASELINE_FILE');
const checkAnswer = Buffer.from(required('BASELINE_CHECK_BASE64'), 'base64');
const size = statSync(file).size;

const server = createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/package') {
    response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    pipeline(createReadStream(file), response).catch(() => response.destroy());
    return;
  }
  if (request.method === 'POST' && request.url === '/check') {
    request.resume();
    request.once('end', () => response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': checkAnswer.length }).end(checkAnswer));
    return;
  }
  response.writeHead(404, { 'content-length': 0 }).end();
});

server.keepAliveTimeout = 72_000;
server.listen({ port, host: '127.0.0.1' }, () => process.stderr.write(`baseline-ota listening on http://127.0.0.1:${port}\n`));

const stop = () => server.close(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
