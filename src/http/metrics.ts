import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Type } from 'typebox';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/** Prometheus metrics at /metrics: process metrics and one histogram of HTTP requests by route. */
export const metricsPlugin = fp(async (app: FastifyInstance, options: { registry: Registry }) => {
  const { registry } = options;
  collectDefaultMetrics({ register: registry, prefix: 'fleetd_' });
  const duration = new Histogram({
    name: 'fleetd_http_request_duration_seconds',
    help: 'HTTP requests by method, route and status, with their duration',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  const refused = new Counter({
    name: 'fleetd_http_errors_total',
    help: 'HTTP error responses by error status',
    labelNames: ['status'],
    registers: [registry],
  });

  // A callback hook, not an async one: it runs on every request, and a promise each is measurable.
  app.addHook('onResponse', (request, reply, done) => {
    // Unmatched URLs share one label so that scanners cannot grow the series without bound.
    const route = request.is404 ? 'unmatched' : request.routeOptions.url ?? 'unmatched';
    duration.observe({ method: request.method, route, status: reply.statusCode }, reply.elapsedTime / 1000);
    if (reply.statusCode >= 400) refused.inc({ status: reply.statusCode });
    done();
  });

  app.get(
    '/metrics',
    { config: { access: 'public' }, schema: { hide: true, response: { 200: Type.String() } } },
    async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  );
});
