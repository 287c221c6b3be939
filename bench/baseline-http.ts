// The bare node:http server the HTTP benchmark compares fleetd with: it answers GET PATH with the
// same JSON bytes fleetd answered, when the same header is present, and nothing else.
//
//   BASELINE_PORT=... BASELINE_PATH=/api/orgs/default BASELINE_HEADER=authorization \
//   BASELINE_BODY_BASE64=... node --import tsx bench/baseline-http.ts
import { createServer } from 'node:http';

const required = (name: string): string => {
  const value = process.env[name];
  if (!value) {
    process.stderr.write(`baseline-http: ${name} is required\n`);
    process.exit(2);
  }
  return value;
};

const port = Number(required('BASELINE_PORT'));
const path = required('BASELINE_PATH');
const header = required('BASELINE_HEADER').toLowerCase();
const body = Buffer.from(required('BASELINE_BODY_BASE64'), 'base64');
const unauthorized = Buffer.from('{"error":{"code":"unauthenticated","message":"Authentication required"}}');

const server = createServer((request, response) => {
  if (request.method !== 'GET' || request.url !== path) {
    response.writeHead(404, { 'content-type': 'application/json; charset=utf-8', 'content-length': 2 }).end('{}');
    return;
  }
  if (!request.headers[header]) {
    response.writeHead(401, { 'content-type': 'application/json; charset=utf-8', 'content-length': unauthorized.length }).end(unauthorized);
    return;
  }
  response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length }).end(body);
});

// Fastify keeps idle connections 72 s by default; the same here, so neither drops the load generator's.
server.keepAliveTimeout = 72_000;
server.listen({ port, host: '127.0.0.1' }, () => process.stderr.write(`baseline-http listening on http://127.0.0.1:${port}${path}\n`));

const stop = () => server.close(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
