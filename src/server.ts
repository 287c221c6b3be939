import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import type { Config } from './config/keys.ts';
import { maskedConfig } from './config/load.ts';
import { FleetError } from './core/errors.ts';
import { buildApp, type App } from './http/app.ts';
import type { Bus } from './hub/bus.ts';
import type { Hub } from './hub/hub.ts';
import { startRrduino, type RrduinoListener } from './adapters/rrduino/listener.ts';
import { openBus } from './hub/open.ts';
import { closeHub, closeHubBase, createHub, listenHub, startHubBase, type HubBase } from './hub/start.ts';
import type { Logger } from './log.ts';
import { createServices, type Services } from './services/index.ts';
import { openStore } from './store/store.ts';

export interface RunningServer {
  url: string;
  app: App;
  services: Services;
  /** Messages between connections and nodes (the `bus` key). */
  bus: Bus;
  /** The device hub: events, device connections, metrics. */
  hub: Hub;
  /** The port of the rrduino listener, when it is on (config.rrduino). */
  rrduinoPort?: number;
  /**
   * Stops accepting, closes device and client connections (the devices go offline), lets in-flight
   * requests finish (up to shutdownTimeout), drains the bus, closes the store.
   */
  close(): Promise<void>;
}

const throttlePruneIntervalMs = 10 * 60_000;

/** Opens the store and the bus, migrates the store, and serves the API until `close()`. */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const store = openStore(config.database, { checkpointThread: { logger: logger.child({ component: 'store' }) } });
  const bus = await openBus(config.bus, logger.child({ component: 'bus' })).catch(async (error: unknown) => {
    await store.close();
    throw error;
  });
  let closing = false;
  let base: HubBase | undefined;
  try {
    const applied = await store.migrate();
    if (applied.length > 0) logger.info({ migrations: applied }, 'database migrated');
    const registry = new Registry();
    base = await startHubBase({ store, bus, config, logger, registry });
    const services = await createServices(store, config, bus, logger, base.events);
    const hub = createHub(base, { store, bus, config, logger, services });
    const app = await buildApp({
      config,
      services,
      hub,
      logger,
      registry,
      ready: async () => {
        if (closing) throw new FleetError('unavailable', 'Shutting down');
        await store.ping().catch((error: unknown) => {
          throw new FleetError('unavailable', 'Database unreachable', { cause: error });
        });
      },
    });
    const listeners = await listenHub(hub, app.server);
    let rrduino: RrduinoListener | undefined;
    if (config.rrduino) rrduino = await startRrduino({ profiles: services.rrduinoProfiles, series: services.series, config, logger: logger.child({ component: 'rrduino' }) });
    await app.listen({ port: config.port, host: config.host }).catch(async (error: unknown) => {
      await rrduino?.close();
      throw error;
    });
    const { port } = app.server.address() as AddressInfo;
    const url = `http://${config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host}:${port}`;
    logger.info({ url, rrduinoPort: rrduino?.port, node: hub.nodeId, config: maskedConfig(config) }, 'fleetd is serving');

    const pruning = setInterval(() => void services.throttle.prune().catch((error: unknown) => logger.warn({ err: error }, 'throttle prune failed')), throttlePruneIntervalMs);
    pruning.unref();

    const close = async () => {
      if (closing) return;
      closing = true;
      clearInterval(pruning);
      const timer = setTimeout(() => {
        logger.warn('shutdown timeout: closing remaining connections');
        app.server.closeAllConnections();
      }, config.shutdownTimeout * 1000);
      await rrduino?.close();
      await listeners.close();
      await app.close();
      clearTimeout(timer);
      await closeHub(hub);
      await services.close();
      await bus.close();
      await store.close();
      logger.info('fleetd stopped');
    };
    return { url, app, services, bus, hub, rrduinoPort: rrduino?.port, close };
  } catch (error) {
    if (base) await closeHubBase(base);
    await bus.close();
    await store.close();
    throw error;
  }
}

/** Whether any system admin exists: a first start without one tells how to make one. */
export async function hasSystemAdmin(services: Services): Promise<boolean> {
  return (await services.store.db.selectFrom('users').select('id').where('system_admin', '=', 1).executeTakeFirst()) !== undefined;
}
