import { FleetError } from '../core/errors.ts';
import type { Logger } from '../log.ts';
import type { Bus } from './bus.ts';
import { MemoryBus } from './memory-bus.ts';
import { connectNatsBus } from './nats-bus.ts';

/**
 * One NATS server address. No user:password@: `fleetd config` and the start-up log print the `bus`
 * key as it is, and NATS authentication is not supported yet.
 */
const natsServer = /^nats:\/\/[^\s,@/]+$/;

/** Opens the bus named by `url`: `memory` (one node), or `nats://host:port[,nats://host:port...]` (a cluster). */
export async function openBus(url: string, logger: Logger): Promise<Bus> {
  if (url === 'memory') return new MemoryBus(logger);
  return connectNatsBus(natsServers(url), logger);
}

function natsServers(url: string): string[] {
  const servers = url.split(',');
  if (!servers.every((server) => natsServer.test(server) && URL.canParse(server))) {
    throw new FleetError('validation_failed', `Unsupported bus URL ${JSON.stringify(url)}: use memory or nats://host:port[,nats://host:port...]`);
  }
  return servers;
}
