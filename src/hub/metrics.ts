import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type ConnectionKind = 'device' | 'client';
export type RefusalReason = 'rate' | 'size' | 'keepalive' | 'auth' | 'binary';
export type DeviceCallOutcome = 'ok' | 'error' | 'timeout' | 'offline';

/**
 * The hub's Prometheus metrics, declared in the registry /metrics reads from. Labels are endpoint
 * names and fixed words, never anything a peer chooses, so the number of series stays bounded.
 */
export class HubMetrics {
  readonly #connected: Record<ConnectionKind, Gauge<'endpoint'>>;
  readonly #messages: Counter<'endpoint' | 'direction'>;
  readonly #relayLatency: Histogram;
  readonly #slowDisconnects: Counter<'endpoint'>;
  readonly #refused: Counter<'endpoint' | 'reason'>;
  readonly #deviceCalls: Counter<'outcome'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#connected = {
      device: new Gauge({ name: 'fleetd_connected_devices', help: 'Device WebSocket connections open on this node, by endpoint', labelNames: ['endpoint'], registers }),
      client: new Gauge({ name: 'fleetd_connected_clients', help: 'Client WebSocket connections open on this node, by endpoint', labelNames: ['endpoint'], registers }),
    };
    this.#messages = new Counter({
      name: 'fleetd_hub_messages_total',
      help: 'WebSocket messages by endpoint and direction (in: received, out: sent)',
      labelNames: ['endpoint', 'direction'],
      registers,
    });
    this.#relayLatency = new Histogram({
      name: 'fleetd_relay_latency_seconds',
      help: 'Time from a relayed message arriving to it being sent on',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.#slowDisconnects = new Counter({
      name: 'fleetd_slow_client_disconnects_total',
      help: 'WebSocket connections closed because they did not read what was sent to them',
      labelNames: ['endpoint'],
      registers,
    });
    this.#refused = new Counter({
      name: 'fleetd_hub_refused_total',
      help: 'WebSocket connections refused or closed by a limit, by endpoint and reason',
      labelNames: ['endpoint', 'reason'],
      registers,
    });
    this.#deviceCalls = new Counter({ name: 'fleetd_device_calls_total', help: 'Calls relayed to devices, by outcome', labelNames: ['outcome'], registers });
  }

  connectionOpened(endpoint: string, kind: ConnectionKind): void {
    this.#connected[kind].inc({ endpoint });
  }

  connectionClosed(endpoint: string, kind: ConnectionKind): void {
    this.#connected[kind].dec({ endpoint });
  }

  messageIn(endpoint: string): void {
    this.#messages.inc({ endpoint, direction: 'in' });
  }

  messageOut(endpoint: string): void {
    this.#messages.inc({ endpoint, direction: 'out' });
  }

  slowConsumerDisconnect(endpoint: string): void {
    this.#slowDisconnects.inc({ endpoint });
  }

  refused(endpoint: string, reason: RefusalReason): void {
    this.#refused.inc({ endpoint, reason });
  }

  observeRelayLatency(seconds: number): void {
    this.#relayLatency.observe(seconds);
  }

  deviceCall(outcome: DeviceCallOutcome): void {
    this.#deviceCalls.inc({ outcome });
  }
}
