import { createHash, createHmac } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/**
 * An rrduino client written from rrduino.md alone (not from fleetd's code), as the Arduino library
 * behaves: `h <id>`, read the 32-byte nonce, k0 = 128 rounds of HMAC(master, x), then each update
 * line MACed with the current key, which ratchets right after sending.
 */

export const sha256 = (bytes: string | Buffer) => createHash('sha256').update(bytes).digest();
const hmac = (key: Buffer, message: string | Buffer) => createHmac('sha256', key).update(message).digest();

export const masterOf = (psk: string) => sha256(Buffer.from(psk, 'ascii'));

export function firstKey(master: Buffer, nonce: Buffer): Buffer {
  let x = nonce;
  for (let i = 0; i < 128; i++) x = hmac(master, x);
  return x;
}

export const ratchet = (master: Buffer, key: Buffer) => hmac(master, key);

/** The wire line (with `\n`) for these pairs under `key`. */
export function signedLine(key: Buffer, pairs: ReadonlyArray<readonly [string, string]>): string {
  const maced = ['u', ...pairs.flat()].join(' ');
  return `${maced} ${hmac(key, maced).toString('hex')}\n`;
}

export class TestClient {
  private received = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private master?: Buffer;
  private key?: Buffer;
  /** Resolves when the server closes the connection (or it fails). */
  readonly closed: Promise<void>;
  isClosed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.isClosed = true;
        this.wake();
        resolve();
      });
    });
    socket.on('error', () => {});
  }

  static async connect(port: number): Promise<TestClient> {
    const socket = connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new TestClient(socket);
  }

  private wake(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Exactly `n` bytes from the server, or an error when it closes first or says nothing for `ms`. */
  async read(n: number, ms = 5000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (this.received.length < n) {
      if (this.isClosed) throw new Error(`closed after ${this.received.length} of ${n} bytes`);
      if (Date.now() > deadline) throw new Error(`no ${n} bytes within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const bytes = this.received.subarray(0, n);
    this.received = this.received.subarray(n);
    return bytes;
  }

  /** The handshake: returns the nonce. */
  async hello(clientId: string, psk: string): Promise<Buffer> {
    this.write(`h ${clientId}\n`);
    const nonce = await this.read(32);
    this.master = masterOf(psk);
    this.key = firstKey(this.master, nonce);
    return nonce;
  }

  /** The next update line, MACed with the current key, which then ratchets: as if it were sent. */
  line(pairs: ReadonlyArray<readonly [string, string]>): string {
    if (!this.key || !this.master) throw new Error('no hello yet');
    const text = signedLine(this.key, pairs);
    this.key = ratchet(this.master, this.key);
    return text;
  }

  update(pairs: ReadonlyArray<readonly [string, string]>): void {
    this.write(this.line(pairs));
  }

  write(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Resolves true when the server closes the connection within `ms`, false when it is still open. */
  async closedWithin(ms: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))]);
  }

  /** Bytes the server sent that no read took: the protocol never sends anything but the nonce. */
  get unread(): Buffer {
    return this.received;
  }

  end(): void {
    this.socket.destroy();
  }
}
