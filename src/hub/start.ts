import type { Server } from 'node:http';
import type { Registry } from 'prom-client';
import { clientEndpoint } from '../adapters/client/endpoint.ts';
import { rdfmDeviceEndpoints } from '../adapters/rdfm/device/endpoints.ts';
import { rdfmShellEndpoint } from '../adapters/rdfm/management/shell-endpoint.ts';
import { relayEndpoint } from '../adapters/relay/endpoint.ts';
import { startRelayCompat } from '../adapters/relay/compat.ts';
import { rhizoWebSocketEndpoint } from '../adapters/rhizo/websocket/endpoint.ts';
import { shellyEndpoints } from '../adapters/shelly/endpoint.ts';
import { shellEndpoints } from '../adapters/shell/endpoints.ts';
import type { Config } from '../config/keys.ts';
import { newId } from '../core/ids.ts';
import { attachWebSockets, limitsFromConfig, type WebSocketServer } from '../http/websocket.ts';
import type { Logger } from '../log.ts';
import type { Services } from '../services/index.ts';
import type { Store } from '../store/store.ts';
import { startActionDispatch } from './action-dispatch.ts';
import type { Bus, BusSubscription } from './bus.ts';
import { DeviceLinks } from './device-links.ts';
import { EventStream } from './events.ts';
import type { Hub } from './hub.ts';
import { openMessageLog } from './message-log.ts';
import { HubMetrics } from './metrics.ts';
import { NodeLiveness } from './node-liveness.ts';
import { startUpdateNotices } from './update-notices.ts';

/** The parts of the hub that exist before the services: the services publish hub events. */
export interface HubBase {
  nodeId: string;
  events: EventStream;
  metrics: HubMetrics;
  liveness: NodeLiveness;
}

/**
 * Starts the event stream, then this node's heartbeat, which also takes offline the devices of nodes
 * that are gone: before this node links any device.
 */
export async function startHubBase(options: { store: Store; bus: Bus; config: Config; logger: Logger; registry: Registry }): Promise<HubBase> {
  const { store, bus, config, logger, registry } = options;
  const nodeId = newId('node');
  const events = new EventStream({ store, bus, logger: logger.child({ component: 'events' }), retentionSeconds: config.eventRetention, replayMax: config.eventReplayMax });
  await events.start();
  const liveness = new NodeLiveness({ store, events, nodeId, logger: logger.child({ component: 'liveness' }) });
  try {
    await liveness.start();
  } catch (error) {
    await events.close();
    throw error;
  }
  return { nodeId, events, metrics: new HubMetrics(registry), liveness };
}

/** Stops the heartbeat (this node's row goes) and the event stream. */
export async function closeHubBase(base: HubBase): Promise<void> {
  await base.liveness.close();
  await base.events.close();
}

export function createHub(base: HubBase, options: { store: Store; bus: Bus; config: Config; logger: Logger; services: Services }): Hub {
  const { store, bus, config, logger, services } = options;
  const links = new DeviceLinks({
    store,
    bus,
    events: base.events,
    nodeId: base.nodeId,
    logger: logger.child({ component: 'links' }),
    metrics: base.metrics,
    callTimeoutMs: config.deviceCallTimeout * 1000,
  });
  base.liveness.onSwept(() => links.reclaim());
  return { ...base, config, logger, bus, services, links, messageLog: openMessageLog(config, logger.child({ component: 'message-log' })) };
}

export interface HubListeners {
  /** Stops the device and client connections: each device goes offline in the store. */
  close(): Promise<void>;
}

/** Serves the hub's WebSocket endpoints on the API's HTTP server, and the Paikea-compatible listeners when configured. */
export async function listenHub(hub: Hub, server: Server): Promise<HubListeners> {
  const actionDispatch = await startActionDispatch(hub);
  const sockets: WebSocketServer = attachWebSockets(server, [...shellyEndpoints(hub), clientEndpoint(hub), relayEndpoint(hub), rhizoWebSocketEndpoint(hub), ...shellEndpoints(hub), ...rdfmDeviceEndpoints(hub), rdfmShellEndpoint(hub)], {
    limits: limitsFromConfig(hub.config),
    metrics: hub.metrics,
    logger: hub.logger.child({ component: 'ws' }),
    trustProxy: hub.config.trustProxy,
  });
  let compat: Awaited<ReturnType<typeof startRelayCompat>> | undefined;
  let updateNotices: BusSubscription | undefined;
  try {
    updateNotices = await startUpdateNotices(hub);
    if (hub.config.relayCompat) compat = await startRelayCompat(hub);
  } catch (error) {
    updateNotices?.unsubscribe();
    await sockets.close();
    actionDispatch.close();
    throw error;
  }
  return {
    async close() {
      actionDispatch.close();
      updateNotices.unsubscribe();
      await compat?.close();
      await sockets.close();
      await hub.links.close();
    },
  };
}

/** Releases what the hub holds once its connections are gone. */
export async function closeHub(hub: Hub): Promise<void> {
  await closeHubBase(hub);
  await hub.messageLog.close();
}
