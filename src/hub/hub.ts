import type { Config } from '../config/keys.ts';
import type { Logger } from '../log.ts';
import type { Services } from '../services/index.ts';
import type { Bus } from './bus.ts';
import type { DeviceLinks } from './device-links.ts';
import type { EventStream } from './events.ts';
import type { MessageLog } from './message-log.ts';
import type { HubMetrics } from './metrics.ts';
import type { NodeLiveness } from './node-liveness.ts';

/**
 * What every protocol adapter is given: the core services and the hub's shared parts. One per node;
 * whatever must hold across nodes goes through `bus` and the store, never through this object.
 */
export interface Hub {
  /** This node's id, as written in devices.connected_node. */
  nodeId: string;
  config: Config;
  logger: Logger;
  bus: Bus;
  services: Services;
  events: EventStream;
  links: DeviceLinks;
  metrics: HubMetrics;
  messageLog: MessageLog;
  /** This node's heartbeat in hub_nodes, and the sweep of nodes that stopped theirs. */
  liveness: NodeLiveness;
}
