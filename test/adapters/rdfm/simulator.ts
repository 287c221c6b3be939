import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import WebSocket from 'ws';
import { Arrivals } from '../../helpers/waiting.ts';

/**
 * An RDFM Linux client as /work/shared/protocols/rdfm.md describes it: an RSA 2048 key pair, a signed
 * `POST /api/v1/auth/device`, the token sent back as `Authorization: Bearer token=<token>`, and the
 * management WebSocket with its JSON frames.
 */
export class RdfmDevice {
  readonly privateKey: KeyObject;
  readonly publicPem: string;
  token: string | undefined;
  #clock = Math.floor(Date.now() / 1000);

  constructor(
    readonly base: string,
    readonly mac: string,
    readonly metadata: Record<string, string> = { 'rdfm.software.version': 'v1', 'rdfm.hardware.devtype': 'board-a' },
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  }

  /** Every authentication signs a fresh timestamp, as the client's clock moves on between them. */
  authBody(overrides: Record<string, unknown> = {}): string {
    this.#clock += 1;
    return JSON.stringify({ metadata: { ...this.metadata, 'rdfm.hardware.macaddr': this.mac }, public_key: this.publicPem, timestamp: this.#clock, ...overrides });
  }

  signature(body: string, key: KeyObject = this.privateKey): string {
    return sign('sha256', Buffer.from(body), key).toString('base64');
  }

  async postAuth(body: string, signature: string | undefined, contentType = 'application/json'): Promise<{ status: number; body: any }> {
    const headers: Record<string, string> = { 'content-type': contentType };
    if (signature !== undefined) headers['x-rdfm-device-signature'] = signature;
    const response = await fetch(`${this.base}/api/v1/auth/device`, { method: 'POST', headers, body });
    const text = await response.text();
    return { status: response.status, body: text === '' ? null : JSON.parse(text) };
  }

  /** Authenticates; keeps the token on 200. */
  async auth(): Promise<{ status: number; body: any }> {
    const body = this.authBody();
    const reply = await this.postAuth(body, this.signature(body));
    if (reply.status === 200) this.token = reply.body.token;
    return reply;
  }

  get authorization(): string {
    return `Bearer token=${this.token}`;
  }

  async post(path: string, body: unknown, token = this.authorization): Promise<{ status: number; body: any }> {
    const response = await fetch(`${this.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: token }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, body: text === '' ? null : JSON.parse(text) };
  }

  updateCheck(): Promise<{ status: number; body: any }> {
    return this.post('/api/v1/update/check', { ...this.metadata, 'rdfm.hardware.macaddr': this.mac });
  }

  connect(path = '/api/v1/devices/ws', token = this.authorization): Promise<RdfmSocket> {
    return RdfmSocket.open(`${this.base.replace(/^http/, 'ws')}${path}`, token);
  }
}

/** A device's WebSocket, keeping what it receives. */
export class RdfmSocket {
  readonly frames: any[] = [];
  readonly binary: Buffer[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #arrivals = new Arrivals();

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.binary.push(data as Buffer);
      else this.frames.push(JSON.parse((data as Buffer).toString('utf8')));
      this.#arrivals.arrived();
    });
  }

  static open(url: string, authorization: string): Promise<RdfmSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { authorization } });
      ws.once('open', () => resolve(new RdfmSocket(ws)));
      ws.once('error', reject);
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  async frame(method: string): Promise<any> {
    await this.#arrivals.until(() => this.frames.some((f) => f.method === method), `a ${method} frame (have ${JSON.stringify(this.frames)})`);
    return this.frames.find((f) => f.method === method);
  }

  until(condition: () => boolean, what: string): Promise<void> {
    return this.#arrivals.until(condition, what);
  }

  close(): void {
    this.ws.close(1000);
  }
}
