import { WebSocket, type ClientOptions } from 'ws';

/**
 * A Shelly Gen2+ device on its outbound WebSocket, written from shelly-gen2.md: it dials the server,
 * names itself with a NotifyFullStatus, answers the RPCs the server sends (Shelly.GetDeviceInfo,
 * GetStatus, GetConfig, ListMethods, GetComponents in pages, `<Type>.GetStatus/GetConfig {id}`,
 * Switch.Set, WS.SetConfig, Shelly.Reboot; method names case-insensitive as on the device) and sends
 * notifications when a test asks. Any test of the device endpoints may use it.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface DynamicComponent {
  key: string;
  status: JsonObject;
  config: JsonObject;
}

/** What a handler returns: a result, a device error, or nothing at all (the request goes unanswered). */
export type Answer = { result: Json } | { error: { code: number; message: string } } | 'silent';

export interface SimulatorOptions {
  /** The server's device URL, e.g. ws://127.0.0.1:7011/shelly (with ?token=… or ?org=… as needed). */
  url: string;
  /** The device id (`src`): `<model-prefix>-<mac>`. */
  id?: string;
  model?: string;
  app?: string;
  ver?: string;
  /** The device's own name (Sys config `device.name`); null when unnamed. */
  name?: string | null;
  /** Shelly.GetStatus without the dynamic components. */
  status?: JsonObject;
  /** Shelly.GetConfig without the dynamic components. */
  config?: JsonObject;
  /** Dynamic components (ids 200–299), served by Shelly.GetComponents only. */
  dynamic?: DynamicComponent[];
  /** Components per Shelly.GetComponents page (the device chooses; FM's simulator uses 10). */
  pageSize?: number;
  /** Whether Shelly.ListMethods lists Shelly.GetComponents (firmware before 1.2 has none). */
  getComponents?: boolean;
  /** The first frame: a NotifyFullStatus (ESP32 devices), NotifyStatus (Wall Display), or none. */
  hello?: 'NotifyFullStatus' | 'NotifyStatus' | false;
  /** Headers and subprotocols of the upgrade (credentials of fleetd's own devices). */
  headers?: Record<string, string>;
  protocols?: string[];
}

export interface ReceivedFrame {
  id?: number | string;
  src?: string;
  dst?: string;
  method?: string;
  params?: JsonObject;
  [key: string]: unknown;
}

const defaultStatus = (): JsonObject => ({
  'switch:0': { id: 0, source: 'init', output: false, apower: 0, voltage: 230.1, current: 0, aenergy: { total: 12.5, by_minute: [0, 0, 0], minute_ts: 1736604000 }, temperature: { tC: 41.2, tF: 106.2 } },
  'input:0': { id: 0, state: false },
  sys: { mac: 'A8032ABB995C', restart_required: false, time: '14:00', uptime: 4, ram_size: 245000, ram_free: 143000, cfg_rev: 18, available_updates: { stable: { version: '1.5.0' } } },
  wifi: { sta_ip: '192.168.1.50', status: 'got ip', ssid: 'home', rssi: -61 },
  cloud: { connected: false },
  ws: { connected: true },
});

const defaultConfig = (name: string | null): JsonObject => ({
  'switch:0': { id: 0, name: 'Pump', initial_state: 'match_input', auto_on: false, auto_off: false },
  'input:0': { id: 0, name: null, type: 'switch', enable: true, invert: false },
  sys: { device: { name, mac: 'A8032ABB995C', fw_id: '20241011-114455/1.4.4-g6d2a586', discoverable: true }, location: { tz: 'Europe/Vienna' } },
  wifi: { sta: { ssid: 'home', is_open: false, enable: true } },
  ws: { enable: true, server: 'ws://fleetd:7011/shelly', ssl_ca: 'ca.pem' },
});

const defaultDynamic = (): DynamicComponent[] => [
  { key: 'boolean:200', status: { value: false }, config: { id: 200, name: 'Pump enabled', persisted: true } },
  { key: 'number:201', status: { value: 21.5 }, config: { id: 201, name: 'Set point', min: 5, max: 30 } },
  { key: 'text:202', status: { value: 'idle' }, config: { id: 202, name: 'Mode', max_len: 32 } },
];

const baseMethods = ['Shelly.GetDeviceInfo', 'Shelly.GetStatus', 'Shelly.GetConfig', 'Shelly.ListMethods', 'Shelly.Reboot', 'Switch.Set', 'Switch.GetStatus', 'Switch.GetConfig', 'WS.SetConfig'];

const copy = <T>(value: T): T => structuredClone(value);

/** `switch:0` → {type: 'switch', id: 0}; `sys` → {type: 'sys'}. */
function splitKey(key: string): { type: string; id?: number } {
  const match = /^(.*):(\d+)$/.exec(key);
  return match ? { type: match[1]!, id: Number(match[2]) } : { type: key };
}

export class ShellySimulator {
  readonly id: string;
  readonly model: string;
  readonly ver: string;
  readonly app: string;
  name: string | null;
  status: JsonObject;
  config: JsonObject;
  dynamic: DynamicComponent[];
  readonly pageSize: number;
  /** Every frame the server sent, in order. */
  readonly received: ReceivedFrame[] = [];
  /** How the server closed the connection. */
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly ws: WebSocket;
  private readonly overrides = new Map<string, (params: JsonObject | undefined, frame: ReceivedFrame) => Answer | Promise<Answer>>();
  private readonly waiters: Array<{ match: (frame: ReceivedFrame) => boolean; resolve: (frame: ReceivedFrame) => void }> = [];
  private readonly getComponents: boolean;

  private constructor(ws: WebSocket, options: SimulatorOptions) {
    this.ws = ws;
    this.id = options.id ?? 'shellyplus1pm-a8032abb995c';
    this.model = options.model ?? 'SNSW-001P16EU';
    this.ver = options.ver ?? '1.4.4';
    this.app = options.app ?? 'Plus1PM';
    this.name = options.name === undefined ? 'Garden pump' : options.name;
    this.status = options.status ?? defaultStatus();
    this.config = options.config ?? defaultConfig(this.name);
    this.dynamic = options.dynamic ?? defaultDynamic();
    this.pageSize = options.pageSize ?? 2;
    this.getComponents = options.getComponents ?? true;
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data, isBinary) => {
      if (!isBinary) void this.onFrame(data.toString());
    });
  }

  /** Dials the server and, by default, sends the hello; rejects with `status` set when the upgrade is refused. */
  static connect(options: SimulatorOptions): Promise<ShellySimulator> {
    return new Promise((resolve, reject) => {
      const clientOptions: ClientOptions = options.headers ? { headers: options.headers } : {};
      const ws = new WebSocket(options.url, options.protocols ?? [], clientOptions);
      const simulator = new ShellySimulator(ws, options);
      ws.once('open', () => {
        const hello = options.hello ?? 'NotifyFullStatus';
        if (hello) simulator.notify(hello, { ts: simulator.now(), ...simulator.status });
        resolve(simulator);
      });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => reject(Object.assign(new Error(`upgrade refused with ${res.statusCode}`), { status: res.statusCode, body: body ? JSON.parse(body) : undefined })));
      });
      ws.once('error', reject);
    });
  }

  /** Replaces how the device answers `method` (any case). */
  on(method: string, handler: (params: JsonObject | undefined, frame: ReceivedFrame) => Answer | Promise<Answer>): this {
    this.overrides.set(method.toLowerCase(), handler);
    return this;
  }

  /** The next frame from the server (already received or still to come) that `match` accepts. */
  next(match: (frame: ReceivedFrame) => boolean, timeoutMs = 5000): Promise<ReceivedFrame> {
    const seen = this.received.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.id} received no matching frame in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        match,
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
      });
    });
  }

  /** The first request of `method` received after the `after`-th frame (method compared case-insensitively). */
  request(method: string, options: { after?: number; timeoutMs?: number } = {}): Promise<ReceivedFrame> {
    const after = options.after ?? 0;
    const wanted = method.toLowerCase();
    return this.next((frame) => this.received.indexOf(frame) >= after && frame.method?.toLowerCase() === wanted, options.timeoutMs);
  }

  /** Requests of `method` received so far. */
  requests(method: string): ReceivedFrame[] {
    return this.received.filter((frame) => frame.method?.toLowerCase() === method.toLowerCase());
  }

  notify(method: string, params: JsonObject): void {
    this.send({ src: this.id, dst: 'ws', method, params });
  }

  /** A NotifyStatus with `changes` merged into the device's status first, as the device does. */
  notifyStatus(changes: JsonObject): void {
    this.status = overlay(this.status, changes);
    this.notify('NotifyStatus', { ts: this.now(), ...changes });
  }

  notifyEvent(events: JsonObject[]): void {
    const ts = this.now();
    this.notify('NotifyEvent', { ts, events: events.map((event) => ({ ts, ...event })) });
  }

  /** Changes a component's configuration and says so with config_changed, as the device does. */
  changeConfig(key: string, changes: JsonObject): void {
    const target = this.dynamic.find((component) => component.key === key);
    if (target) target.config = { ...target.config, ...changes };
    else this.config[key] = { ...(this.config[key] as JsonObject), ...changes };
    const { id } = splitKey(key);
    this.notifyEvent([{ component: key, ...(id !== undefined && { id }), event: 'config_changed', restart_required: false, cfg_rev: 19 }]);
  }

  /** Adds a dynamic component (Boolean.Add and the like) and says so with component_added. */
  addComponent(component: DynamicComponent): void {
    this.dynamic.push(component);
    this.notifyEvent([{ component: 'sys', event: 'component_added', target: component.key, cfg_rev: 20 }]);
  }

  removeComponent(key: string): void {
    this.dynamic = this.dynamic.filter((component) => component.key !== key);
    this.notifyEvent([{ component: 'sys', event: 'component_removed', target: key, cfg_rev: 21 }]);
  }

  /** Any frame, as given: an object is sent as JSON, text as it is. */
  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000, 'bye');
    return this.closed;
  }

  /** The status the device would report in a fresh Shelly.GetStatus, dynamic components included. */
  fullStatus(): JsonObject {
    return { ...copy(this.status), ...Object.fromEntries(this.dynamic.map((component) => [component.key, copy(component.status)])) };
  }

  fullConfig(): JsonObject {
    return { ...copy(this.config), ...Object.fromEntries(this.dynamic.map((component) => [component.key, copy(component.config)])) };
  }

  deviceInfo(): JsonObject {
    return {
      name: this.name,
      id: this.id,
      mac: 'A8032ABB995C',
      slot: 0,
      model: this.model,
      gen: 2,
      fw_id: `20241011-114455/${this.ver}-g6d2a586`,
      ver: this.ver,
      app: this.app,
      auth_en: false,
      auth_domain: null,
    };
  }

  private now(): number {
    return Date.now() / 1000;
  }

  private async onFrame(text: string): Promise<void> {
    const frame = JSON.parse(text) as ReceivedFrame;
    this.received.push(frame);
    for (const waiter of [...this.waiters]) {
      if (waiter.match(frame)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(frame);
      }
    }
    // Requests carry an id; notifications (Device.Desired of fleetd's own devices) do not.
    if (typeof frame.method !== 'string' || frame.id === undefined) return;
    const method = frame.method.toLowerCase();
    const override = this.overrides.get(method);
    const answer = override ? await override(frame.params, frame) : this.answer(method, frame.params);
    if (answer === 'silent' || this.ws.readyState !== WebSocket.OPEN) return;
    this.send({ id: frame.id, src: this.id, dst: frame.src, ...answer });
  }

  private answer(method: string, params: JsonObject | undefined): Answer {
    switch (method) {
      case 'shelly.getdeviceinfo':
        return { result: this.deviceInfo() };
      case 'shelly.getstatus':
        return { result: copy(this.status) };
      case 'shelly.getconfig':
        return { result: copy(this.config) };
      case 'shelly.listmethods':
        return { result: { methods: this.getComponents ? [...baseMethods, 'Shelly.GetComponents'] : baseMethods } };
      case 'shelly.getcomponents':
        return { result: this.componentsPage(params) };
      case 'switch.set':
        return this.switchSet(params);
      case 'ws.setconfig':
        return { result: { restart_required: true } };
      case 'shelly.reboot':
        return { result: null };
    }
    const [type, operation] = method.split('.');
    if (operation === 'getstatus' || operation === 'getconfig') return this.componentAnswer(type!, operation, params);
    return { error: { code: 404, message: `No handler for ${method}` } };
  }

  private componentsPage(params: JsonObject | undefined): JsonObject {
    const offset = typeof params?.offset === 'number' ? params.offset : 0;
    const components = this.dynamic.slice(offset, offset + this.pageSize).map((component) => ({ key: component.key, status: copy(component.status), config: copy(component.config) }));
    return { components, cfg_rev: 19, offset, total: this.dynamic.length };
  }

  /** `<Type>.GetStatus {id}` / `<Type>.GetConfig {id}` of one component; a bad id is -105 as on the device. */
  private componentAnswer(type: string, operation: 'getstatus' | 'getconfig', params: JsonObject | undefined): Answer {
    const id = params?.id;
    const key = typeof id === 'number' ? `${type}:${id}` : type;
    const dynamic = this.dynamic.find((component) => component.key === key);
    const value = dynamic ? (operation === 'getstatus' ? dynamic.status : dynamic.config) : (operation === 'getstatus' ? this.status : this.config)[key];
    if (value === undefined) return { error: { code: -105, message: `Bad id=${String(id)}` } };
    return { result: copy(value) };
  }

  private switchSet(params: JsonObject | undefined): Answer {
    const key = `switch:${String(params?.id)}`;
    const current = this.status[key];
    if (!isObject(current)) return { error: { code: -105, message: `Bad id=${String(params?.id)}` } };
    if (typeof params?.on !== 'boolean') return { error: { code: -103, message: 'Missing required argument on!' } };
    const wasOn = current.output as boolean;
    this.notifyStatus({ [key]: { id: params.id as number, output: params.on, source: 'WS_in' } });
    return { result: { was_on: wasOn } };
  }
}

/** Fleet Manager's mergeStatusObjects (shelly-gen2.md §5): objects merge key by key, anything else replaces. */
function overlay(base: JsonObject, patch: JsonObject): JsonObject {
  const merged = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    const current = merged[key];
    merged[key] = isObject(current) && isObject(value) ? overlay(current, value) : value;
  }
  return merged;
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
