import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RouteOptions } from 'fastify';
import { Registry } from 'prom-client';
import { loadConfig } from '../../src/config/load.ts';
import { actions, type AccessDeclaration } from '../../src/core/access.ts';
import { buildApp, type App } from '../../src/http/app.ts';
import { createLogger } from '../../src/log.ts';
import type { Bus } from '../../src/hub/bus.ts';
import type { Hub } from '../../src/hub/hub.ts';
import { closeHub, createHub, startHubBase } from '../../src/hub/start.ts';
import { openBus } from '../../src/hub/open.ts';
import { createServices } from '../../src/services/index.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { backends, type TestDatabase } from '../helpers/backends.ts';
import { request } from '../helpers/server.ts';

/**
 * The guard against unguarded routes: every route the app registers, whoever registers it, must say
 * who may call it and what it answers, and the OpenAPI document must say the same.
 */

interface SeenRoute {
  method: string;
  url: string;
  options: RouteOptions;
}

/**
 * Routes that need an authenticated principal but ask the permission function nothing more here:
 * POST /api/rpc authorizes each JSON-RPC method by that method's own declaration.
 */
const authenticatedOnly = new Set(['GET /api/auth/me', 'POST /api/auth/logout', 'POST /api/rpc']);
/** Routes of the RDFM adapter (src/adapters/rdfm), which speak RDFM's error body rather than fleetd's; rhizo's /api/v1 routes speak fleetd's. */
const rdfmPrefixes = ['/api/v1/auth/', '/api/v1/update/', '/api/v1/logs', '/api/v1/devices', '/api/v1/packages', '/api/v1/groups', '/api/v1/permissions', '/api/v2/', '/api/stream'];
const isRdfmRoute = (url: string) => rdfmPrefixes.some((prefix) => url.startsWith(prefix));

const accessOf = (route: SeenRoute) => route.options.config?.access as AccessDeclaration | undefined;
const hidden = (route: SeenRoute) => (route.options.schema as { hide?: boolean } | undefined)?.hide === true;
const label = (route: SeenRoute) => `${route.method} ${route.url}`;
/** `/api/orgs/:orgId` as the OpenAPI document spells it: `/api/orgs/{orgId}` (and a wildcard `{*}`). */
const openapiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}').replace(/\*$/, '{*}');
/** A URL that reaches the route, with made-up path parameters. */
const concrete = (url: string) => url.replace(/:\w+/g, 'x').replace(/\*$/, 'x');

for (const backend of await backends()) {
  describe(`routes [${backend.name}]`, { skip: backend.skip }, () => {
    const seen: SeenRoute[] = [];
    let database: TestDatabase;
    let data: string;
    let store: Store;
    let bus: Bus;
    let app: App;
    let hub: Hub | undefined;
    let url: string;

    before(async () => {
      database = await backend.create();
      data = mkdtempSync(join(tmpdir(), 'fleetd-data-'));
      const { config } = loadConfig({ env: {}, cwd: data, flags: { logLevel: 'silent', data, database: database.url } });
      store = openStore(config.database);
      await store.migrate();
      bus = await openBus('memory', createLogger('silent'));
      const logger = createLogger('silent');
      const registry = new Registry();
      const base = await startHubBase({ store, bus, config, logger, registry });
      const services = await createServices(store, config, bus, logger, base.events);
      hub = createHub(base, { store, bus, config, logger, services });
      app = await buildApp({
        config,
        services,
        hub,
        registry,
        logger,
        ready: async () => {},
        // Fastify hands every onRoute hook the same options object: what later hooks change shows here too.
        onRoute: (options) => {
          for (const method of [options.method].flat()) seen.push({ method, url: options.url, options });
        },
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const address = app.server.address();
      assert.ok(address && typeof address === 'object');
      url = `http://127.0.0.1:${address.port}`;
    });
    after(async () => {
      await app?.close();
      if (hub) await closeHub(hub);
      await bus?.close();
      await store?.close();
      await database?.drop();
      if (data) rmSync(data, { recursive: true, force: true });
    });

    it('sees the routes of every plugin', () => {
      const labels = new Set(seen.map(label));
      for (const expected of ['GET /healthz', 'GET /metrics', 'GET /api/openapi.json', 'GET /api/docs', 'POST /api/auth/login', 'GET /api/orgs/:orgId/audit', 'DELETE /api/users/:userId']) {
        assert.ok(labels.has(expected), `route ${expected} was not seen; seen: ${[...labels].join(', ')}`);
      }
    });

    it('every route declares its access', () => {
      const undeclared = seen.filter((r) => {
        const access = accessOf(r);
        return access !== 'public' && !(typeof access === 'object' && Array.isArray(access.actions));
      });
      assert.deepEqual(undeclared.map(label), [], 'routes without config.access');
    });

    it('every route that is not hidden declares its responses', () => {
      const missing = seen.filter((r) => !hidden(r)).filter((r) => {
        const response = (r.options.schema as { response?: Record<string, unknown> } | undefined)?.response;
        return response === undefined || Object.keys(response).length === 0;
      });
      assert.deepEqual(missing.map(label), [], 'routes without schema.response');
    });

    it('every guarded route names actions the permission function knows', () => {
      const known = new Set<string>(actions);
      const problems: string[] = [];
      for (const route of seen) {
        const access = accessOf(route);
        if (access === undefined || access === 'public') continue;
        for (const action of access.actions) if (!known.has(action)) problems.push(`${label(route)}: unknown action ${action}`);
        if (access.actions.length === 0 && !authenticatedOnly.has(label(route).replace(/^HEAD /, 'GET '))) {
          problems.push(`${label(route)}: declares no action; only ${[...authenticatedOnly].join(', ')} may ask for authentication alone`);
        }
      }
      assert.deepEqual(problems, []);
    });

    it('every guarded route refuses a request without credentials with 401, unless it lets anonymous callers in', async () => {
      for (const route of seen) {
        const access = accessOf(route);
        const reply = await request(url, route.method, concrete(route.url), route.method === 'POST' || route.method === 'PATCH' ? { body: {} } : {});
        if (access === 'public' || access?.anonymous) {
          assert.notEqual(reply.status, 401, `${label(route)} is public or open to anonymous callers`);
          continue;
        }
        assert.equal(reply.status, 401, `${label(route)} without credentials`);
        // RDFM's routes answer with RDFM's error body, {"error": "<message>"}.
        if (route.method === 'HEAD') continue;
        if (isRdfmRoute(route.url)) assert.equal(typeof reply.body.error, 'string', label(route));
        else assert.equal(reply.body.error.code, 'unauthenticated', label(route));
      }
    });

    it('the OpenAPI document lists every route that is not hidden, with security exactly when it is not public', async () => {
      const reply = await request(url, 'GET', '/api/openapi.json');
      assert.equal(reply.status, 200);
      const paths = reply.body.paths as Record<string, Record<string, { security?: unknown[]; 'x-fleetd-actions'?: string[] }>>;
      const listed = seen.filter((r) => r.method !== 'HEAD' && !hidden(r));
      for (const route of listed) {
        const operation = paths[openapiPath(route.url)]?.[route.method.toLowerCase()];
        assert.ok(operation, `${label(route)} is missing from /api/openapi.json`);
        const access = accessOf(route);
        if (access === 'public') {
          assert.equal(operation.security, undefined, `${label(route)} is public but the document asks for credentials`);
        } else {
          assert.ok(Array.isArray(operation.security) && operation.security.length > 0, `${label(route)} needs credentials but the document does not say so`);
          assert.deepEqual(operation['x-fleetd-actions'] ?? [], [...(access?.actions ?? [])], label(route));
        }
      }
      const documented = Object.entries(paths).flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`));
      const expected = new Set(listed.map((r) => `${r.method} ${openapiPath(r.url)}`));
      assert.deepEqual(documented.filter((d) => !expected.has(d)), [], 'operations in the document that are not routes');
    });

    it('the hidden routes are public and still answer', async () => {
      for (const path of ['/api/openapi.json', '/metrics']) {
        const route = seen.find((r) => r.method === 'GET' && r.url === path);
        assert.ok(route && hidden(route), `${path} is hidden from the document`);
        assert.equal(accessOf(route), 'public');
      }
      const docs = await request(url, 'GET', '/api/docs');
      assert.equal(docs.status, 200);
      assert.match(docs.headers.get('content-type') ?? '', /text\/html/);
      const metrics = await request(url, 'GET', '/metrics');
      assert.equal(metrics.status, 200);
      assert.match(String(metrics.body), /fleetd_http_request_duration_seconds/);
    });
  });
}
