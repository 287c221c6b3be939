import { request as httpRequest } from 'node:http';

/**
 * A rhizo client as rhizo-client (rhizo/resources.py, sequences.py, controller.py) talks to the
 * server: every request form-encoded in the body (GET included, which fetch cannot send), with
 * `Authorization: Basic base64("<VERSION>.<BUILD>:<secret key>")`. Errors are the status codes.
 */

export const clientVersion = '0.0.4.unknown';

export interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export type Form = Record<string, string | number | boolean>;

export class ApiError extends Error {
  constructor(readonly reply: RawReply) {
    super(`API error ${reply.status}: ${reply.body.toString('utf8').slice(0, 300)}`);
  }
  get status() {
    return this.reply.status;
  }
}

/** One HTTP request exactly as given: no path normalization, any method with any body. */
export function send(base: string, method: string, path: string, options: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<RawReply> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const req = httpRequest(
      { host: url.hostname, port: url.port, method, path, headers: { ...options.headers, ...(body && { 'content-length': String(body.length) }) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const encode = (form: Form) => new URLSearchParams(Object.entries(form).map(([k, v]): [string, string] => [k, String(v)])).toString();

/** `datetime.isoformat() + ' Z'`, as the client writes timestamps. */
export const clientTimestamp = (ms: number) => `${new Date(ms).toISOString().slice(0, 23)}000 Z`;

export class RhizoClient {
  constructor(
    readonly base: string,
    /** A secret key (Basic auth, as rhizo-client), or `Bearer <token>` for a person's fleetd token. */
    public secret: string,
  ) {}

  get authorization(): string {
    return this.secret.startsWith('Bearer ') ? this.secret : `Basic ${Buffer.from(`${clientVersion}:${this.secret}`).toString('base64')}`;
  }

  /** send_request_to_server, but returning the reply whatever the status. */
  raw(method: string, path: string, params: Form = {}, acceptBinary = false): Promise<RawReply> {
    return send(this.base, method, path, {
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: acceptBinary ? 'application/octet-stream' : 'text/plain', authorization: this.authorization },
      body: encode(params),
    });
  }

  async request(method: string, path: string, params: Form = {}, acceptBinary = false): Promise<Buffer> {
    const reply = await this.raw(method, path, params, acceptBinary);
    if (reply.status !== 200) throw new ApiError(reply);
    return reply.body;
  }

  async json<T = any>(method: string, path: string, params: Form = {}): Promise<T> {
    return JSON.parse((await this.request(method, path, params)).toString('utf8')) as T;
  }

  // controller.path_on_server(): resources.file_info('/self')
  async pathOnServer(): Promise<string> {
    return (await this.info('/self')).path;
  }

  list(dir: string, options: { recursive?: boolean; type?: string; filter?: string; extended?: boolean } = {}): Promise<any[]> {
    const params: Form = { extended: Number(options.extended ?? false) };
    if (options.recursive) params.recursive = 'True';
    if (options.type) params.type = options.type;
    if (options.filter) params.filter = options.filter;
    return this.json('GET', `/api/v1/resources${dir}`, params);
  }

  async exists(path: string): Promise<boolean> {
    try {
      await this.request('GET', `/api/v1/resources${path.replaceAll(' ', '%20')}`, { meta: 1 });
      return true;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return false;
      throw error;
    }
  }

  info(path: string): Promise<any> {
    return this.json('GET', `/api/v1/resources${path}`, { meta: 1, include_path: 1 });
  }

  read(path: string): Promise<Buffer> {
    return this.request('GET', `/api/v1/resources${path}`, {}, true);
  }

  async createFolder(path: string): Promise<void> {
    const slash = path.lastIndexOf('/');
    await this.request('POST', '/api/v1/resources', { path: path.slice(0, slash), name: path.slice(slash + 1), type: 10 });
  }

  // files.write: GET (with the data, as the client does), PUT on success, POST to create on 404.
  async write(path: string, contents: string | Buffer): Promise<void> {
    const info: Form = { data: Buffer.from(contents).toString('base64') };
    try {
      await this.request('GET', `/api/v1/resources${path}`, info);
      await this.request('PUT', `/api/v1/resources${path}`, info);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
      const slash = path.lastIndexOf('/');
      await this.request('POST', '/api/v1/resources', { ...info, path: path.slice(0, slash), name: path.slice(slash + 1), type: 20 });
    }
  }

  async move(path: string, parent: string): Promise<void> {
    await this.request('PUT', `/api/v1/resources${path}`, { parent });
  }

  async delete(path: string, params: Form = {}): Promise<void> {
    await this.request('DELETE', `/api/v1/resources${path}`, params);
  }

  async sendMessage(folderPath: string, type: string, parameters: Record<string, unknown>): Promise<void> {
    await this.request('POST', '/api/v1/messages', { folder_path: folderPath, type, parameters: JSON.stringify(parameters) });
  }

  // sequences.create (the client version that sends the settings as top-level parameters).
  async createSequence(path: string, dataType: 'numeric' | 'text' | 'image', options: { decimalPlaces?: number; units?: string } = {}): Promise<void> {
    const slash = path.lastIndexOf('/');
    const params: Form = { path: path.slice(0, slash), name: path.slice(slash + 1), type: 21, data_type: { numeric: 1, text: 2, image: 3 }[dataType], min_storage_interval: 20 };
    if (options.decimalPlaces !== undefined) params.decimal_places = options.decimalPlaces;
    if (options.units) params.units = options.units;
    await this.request('POST', '/api/v1/resources', params);
  }

  // sequences.update(name, value, use_websocket=False): write the value, then read it back until it is there.
  async updateSequence(path: string, value: unknown): Promise<void> {
    const text = String(value);
    for (let i = 0; i < 10; i++) {
      await this.write(path, text);
      if ((await this.read(path)).toString('utf8') === text) return;
    }
    throw new Error(`${path} did not read back ${text}`);
  }

  // sequences.update_multiple(values, timestamp, use_message=False)
  async updateMultiple(values: Record<string, unknown>, timestamp = Date.now()): Promise<Buffer> {
    const sendValues = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, String(v)]));
    return this.request('PUT', '/api/v1/resources', { values: JSON.stringify(sendValues), timestamp: clientTimestamp(timestamp) });
  }

  // controller.request_key(): PIN, then poll until the key comes (the test enters the PIN in between).
  async requestPin(): Promise<{ pin: number; pin_code: string }> {
    return this.json('POST', '/api/v1/pins');
  }

  pollPin(pin: number, pinCode: string): Promise<{ status: string; secret_key?: string; controller_path?: string; message?: string }> {
    return this.json('GET', `/api/v1/pins/${pin}`, { pin_code: pinCode });
  }
}
