import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Bus, BusKind, BusMessage } from '../../src/hub/bus.ts';
import { openBus } from '../../src/hub/open.ts';
import { createLogger, type Logger } from '../../src/log.ts';

/**
 * The bus implementations every bus test runs against. In-process always; NATS on this machine
 * (FLEETD_TEST_NATS, default nats://127.0.0.1:4222). In CI an unreachable NATS fails the run;
 * elsewhere its tests skip with a message naming the service.
 */
export interface BusBackend {
  name: BusKind;
  /** Why the backend's tests are skipped here, or undefined when they run. */
  skip?: string;
  /**
   * Two nodes of one cluster: two NATS connections, or for the in-process bus the same bus twice,
   * so a test written for two nodes checks both. `logger` receives what the nodes log.
   */
  nodes(logger?: Logger): Promise<[Bus, Bus]>;
}

export const natsTestUrl = process.env.FLEETD_TEST_NATS ?? 'nats://127.0.0.1:4222';
const natsHint =
  `NATS is not reachable at ${natsTestUrl}; start it (start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server ` +
  '-- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log) or set FLEETD_TEST_NATS';

const silent = createLogger('silent');

async function natsReachable(): Promise<boolean> {
  try {
    await (await openBus(natsTestUrl, silent)).close();
    return true;
  } catch {
    return false;
  }
}

const memoryBackend: BusBackend = {
  name: 'memory',
  async nodes(logger = silent) {
    const bus = await openBus('memory', logger);
    return [bus, bus];
  },
};

function natsBackend(skip: string | undefined): BusBackend {
  return {
    name: 'nats',
    skip,
    nodes: async (logger = silent) => [await openBus(natsTestUrl, logger), await openBus(natsTestUrl, logger)],
  };
}

let cached: Promise<BusBackend[]> | undefined;

export function busBackends(): Promise<BusBackend[]> {
  cached ??= (async () => {
    const reachable = await natsReachable();
    if (!reachable && process.env.CI) throw new Error(`${natsHint} (CI=true: NATS tests may not be skipped)`);
    return [memoryBackend, natsBackend(reachable ? undefined : natsHint)];
  })();
  return cached;
}

/** A subject prefix no other test uses, so tests sharing one NATS server never see each other's messages. */
export const uniquePrefix = () => `test.${randomBytes(6).toString('hex')}`;


/** A handler that keeps what it receives, and a way to wait for a number of messages. */
export interface Inbox {
  messages: BusMessage[];
  handler: (message: BusMessage) => undefined;
  /** Resolves with the messages once there are `count`; fails after `ms` saying how many came. */
  until(count: number, ms?: number): Promise<BusMessage[]>;
}

export function inbox(): Inbox {
  const messages: BusMessage[] = [];
  let wake = () => {};
  return {
    messages,
    handler(message) {
      messages.push(message);
      wake();
      return undefined;
    },
    async until(count, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (messages.length < count) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) assert.fail(`expected ${count} messages, received ${messages.length}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, remaining);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      return messages;
    },
  };
}

/**
 * Waits until everything `publisher` sent before now has reached `subscriber`'s handlers: a message
 * on a fresh subject, which each bus delivers after the earlier ones. Lets a test assert that a
 * message did not arrive without sleeping.
 */
export async function fence(publisher: Bus, subscriber: Bus, prefix: string): Promise<void> {
  const subject = `${prefix}.fence.${randomBytes(4).toString('hex')}`;
  const arrival = inbox();
  const subscription = await subscriber.subscribe(subject, arrival.handler);
  publisher.publish(subject, null);
  await arrival.until(1);
  subscription.unsubscribe();
}
