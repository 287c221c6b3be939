import { Type, type Static, type TLiteral, type TOptional, type TSchema, type TUnion } from 'typebox';

export interface KeyDefinition {
  schema: TSchema;
  description: string;
  /** Shown as `***` by `fleetd config` and in logs. */
  secret?: boolean;
  /** What the key accepts, in words, where the schema alone does not say it well. */
  allowed?: string;
}

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const admissionPolicies = ['manual', 'token', 'open'] as const;
/** The device endpoints, each of which may have its own admission policy. */
export const admissionEndpoints = ['shelly', 'devices', 'relay', 'checkin', 'rdfm'] as const;
export type AdmissionPolicy = (typeof admissionPolicies)[number];
export type AdmissionEndpoint = (typeof admissionEndpoints)[number];

/**
 * Every configuration key fleetd knows. The same key is `name` in fleetd.yaml, `FLEETD_NAME`
 * in the environment and `--name` on the command line (camelCase becoming SNAKE_CASE and kebab-case).
 */
export const configKeys = {
  port: { schema: Type.Integer({ minimum: 0, maximum: 65535, default: 7011 }), description: 'TCP port of the HTTP and WebSocket server (Shelly devices dial 7011).' },
  host: { schema: Type.String({ minLength: 1, default: '0.0.0.0' }), description: 'Address to listen on; 0.0.0.0 so devices on the network can reach the server.' },
  data: { schema: Type.String({ minLength: 1, default: './fleetd-data' }), description: 'Folder for the SQLite file and the blob store.' },
  database: {
    schema: Type.String({ pattern: '^$|^(sqlite:|postgres(ql)?://)', default: '' }),
    allowed: 'a URL starting with sqlite: or postgres://',
    description: 'Database URL: `sqlite:PATH` (default `sqlite:<data>/fleetd.db`) or `postgres://user@host:port/db`.',
    secret: true,
  },
  bus: {
    // No user:password@ in the URLs: this key is printed unmasked, and NATS authentication is not supported yet.
    schema: Type.String({ pattern: '^(memory|nats://[^\\s,@/]+(,nats://[^\\s,@/]+)*)$', default: 'memory' }),
    allowed: 'memory, or a comma-separated list of nats://host:port URLs',
    description: 'Message bus between connections and nodes: `memory` (in-process, one node) or `nats://host:port[,nats://host:port...]` (NATS, several nodes).',
  },
  logLevel: { schema: Type.Union(logLevels.map((l) => Type.Literal(l)), { default: 'info' }), description: 'Least severe log level written.' },
  bodyLimit: { schema: Type.Integer({ minimum: 1024, maximum: 1073741824, default: 1048576 }), description: 'Largest HTTP request body accepted, in bytes.' },
  trustProxy: { schema: Type.Boolean({ default: false }), description: 'Take the client address from X-Forwarded-For (only behind a reverse proxy you run).' },
  jwtSecret: {
    schema: Type.String({ pattern: '^(.{32,})?$', default: '' }),
    allowed: 'empty, or a text of at least 32 characters',
    description: 'Secret that signs access tokens; when empty, one is generated once and kept in the database, shared by every node.',
    secret: true,
  },
  accessTokenTtl: { schema: Type.Integer({ minimum: 1, maximum: 86400, default: 900 }), description: 'Lifetime of an access token, in seconds.' },
  refreshTokenTtl: { schema: Type.Integer({ minimum: 60, maximum: 31536000, default: 2592000 }), description: 'Lifetime of a login session (refresh token and cookie), in seconds.' },
  cacheTtl: {
    schema: Type.Integer({ minimum: 0, maximum: 300, default: 5 }),
    description:
      'Seconds a node may reuse identity data it has read (who a token or API key stands for, organizations). Changes on the same node apply at once, changes made on other nodes within this time; 0 reads the database every time.',
  },
  cookieSecure: { schema: Type.Boolean({ default: false }), description: 'Mark the session cookie Secure (turn on when served over HTTPS).' },
  throttleMaxFailures: { schema: Type.Integer({ minimum: 1, maximum: 100000, default: 10 }), description: 'Failed logins (or unknown API keys) from one address before it is blocked.' },
  throttleWindow: { schema: Type.Integer({ minimum: 1, maximum: 86400, default: 900 }), description: 'Seconds over which failures are counted, and how long a block lasts.' },
  shutdownTimeout: { schema: Type.Integer({ minimum: 1, maximum: 3600, default: 10 }), description: 'Seconds to finish in-flight requests on SIGTERM before closing anyway.' },
  oidcIssuer: { schema: Type.String({ default: '' }), description: 'Issuer (`iss`) of external OAuth2/OIDC access tokens to accept; empty turns OIDC off.' },
  oidcJwksUrl: { schema: Type.String({ default: '' }), description: 'JWKS URL of that issuer (Keycloak: `<realm>/protocol/openid-connect/certs`).' },
  oidcAudience: { schema: Type.String({ default: '' }), description: 'Required `aud` of external tokens; empty accepts any audience.' },
  oidcRolesClaim: { schema: Type.String({ minLength: 1, default: 'roles' }), description: 'Claim holding the roles, a dotted path such as `realm_access.roles` (Keycloak).' },
  oidcRoleMap: {
    schema: Type.Record(Type.String(), Type.Union(['viewer', 'operator', 'admin', 'owner', 'system_admin'].map((r) => Type.Literal(r))), { default: {} }),
    description: 'Maps external role names to fleetd roles (`viewer`, `operator`, `admin`, `owner`, `system_admin`); fleetd role names map to themselves.',
  },
  oidcOrganization: { schema: Type.String({ minLength: 1, default: 'default' }), description: 'Slug of the organization external users belong to.' },
  oidcEmailClaim: { schema: Type.String({ minLength: 1, default: 'email' }), description: 'Claim holding the user email.' },
  admission: {
    schema: Type.Union(admissionPolicies.map((p) => Type.Literal(p)), { default: 'manual' }),
    description:
      'How an unknown device becomes trusted: `manual` (it waits until an admin accepts it), `token` (only with an enrollment token or a device key; others are refused) or `open` (admitted at once: for a lab bench only).',
  },
  admissionEndpoints: {
    schema: Type.Object(Object.fromEntries(admissionEndpoints.map((e) => [e, Type.Optional(Type.Union(admissionPolicies.map((p) => Type.Literal(p))))])) as Record<AdmissionEndpoint, TOptional<TUnion<TLiteral<AdmissionPolicy>[]>>>, {
      additionalProperties: false,
      default: {},
    }),
    allowed: `a mapping of endpoint (${admissionEndpoints.join(', ')}) to policy (${admissionPolicies.join(', ')})`,
    description: 'The admission policy of single device endpoints, overriding `admission`, e.g. `{shelly: open}`.',
  },
  checkinWindow: { schema: Type.Integer({ minimum: 5, maximum: 3600, default: 300 }), description: 'Seconds a signed check-in timestamp may differ from the server clock.' },
  waitingRoomSize: { schema: Type.Integer({ minimum: 1, maximum: 1000000, default: 1000 }), description: 'Most devices waiting for admission at once; more are refused until some are decided.' },
  deviceCallTimeout: { schema: Type.Integer({ minimum: 1, maximum: 600, default: 30 }), description: 'Seconds a call relayed to a device waits for its answer, unless the caller asks for less.' },
  hydrationTimeout: { schema: Type.Integer({ minimum: 1, maximum: 600, default: 20 }), description: 'Seconds each call of a Shelly device\'s hydration (GetDeviceInfo, GetStatus, GetConfig, GetComponents) may take.' },
  wsMaxFrame: { schema: Type.Integer({ minimum: 1024, maximum: 67108864, default: 1048576 }), description: 'Largest WebSocket message accepted, in bytes; a larger one closes the connection with 1009.' },
  wsRateLimit: { schema: Type.Integer({ minimum: 1, maximum: 1000000, default: 600 }), description: 'Messages per minute one WebSocket connection may send; above it the connection is closed with 1008.' },
  wsSendQueue: {
    schema: Type.Integer({ minimum: 1024, maximum: 1073741824, default: 4194304 }),
    description: 'Bytes waiting to be sent to one WebSocket connection before it counts as too slow and is closed with 4008.',
  },
  wsPingInterval: { schema: Type.Integer({ minimum: 1, maximum: 3600, default: 30 }), description: 'Seconds between WebSocket pings; a connection that misses two pongs in a row is closed.' },
  eventRetention: { schema: Type.Integer({ minimum: 10, maximum: 604800, default: 3600 }), description: 'Seconds hub events are kept so that a reconnecting client can catch up on what it missed.' },
  eventReplayMax: { schema: Type.Integer({ minimum: 1, maximum: 100000, default: 1000 }), description: 'Most events replayed to a reconnecting client; if it missed more it is told to resync.' },
  messageLog: {
    schema: Type.String({ default: '' }),
    description: 'File of the routed-message log (relay frames, and device calls with `messageLogDevices`); empty means `<data>/messages.log`, `off` turns it off.',
  },
  messageLogDevices: { schema: Type.Boolean({ default: false }), description: 'Also log the frames of device endpoints (Shelly, fleetd devices), not only the relay.' },
  messageLogMaxBytes: { schema: Type.Integer({ minimum: 1024, maximum: 1073741824, default: 10485760 }), description: 'Size at which the message log is rotated, in bytes.' },
  messageLogFiles: { schema: Type.Integer({ minimum: 1, maximum: 1000, default: 5 }), description: 'Rotated message log files kept besides the current one; older ones are deleted.' },
  messageLogRedact: {
    allowed: 'a list of texts, each a pattern such as *password*',
    schema: Type.Array(Type.String({ minLength: 1 }), { default: ['*pass*', '*secret*', '*token*', '*key*', 'store_new_sta', 'test_new_sta'] }),
    description:
      'Patterns (`*` matches any text, case-insensitive) of JSON keys whose values, and of relay commands whose arguments, are written as `[redacted]` in the message log.',
  },
  relayCompat: { schema: Type.Boolean({ default: false }), description: 'Also serve the relay on Paikea\'s own layout: devices on `relayCompatDevicePort` with the channel as the path, pages on `relayCompatPagePort` (127.0.0.1 only).' },
  relayCompatDevicePort: { schema: Type.Integer({ minimum: 0, maximum: 65535, default: 7777 }), description: 'Device port of the Paikea-compatible relay listener.' },
  relayCompatPagePort: { schema: Type.Integer({ minimum: 0, maximum: 65535, default: 7770 }), description: 'Page port of the Paikea-compatible relay listener, bound to 127.0.0.1 for a reverse proxy.' },
  relayCompatOrg: { schema: Type.String({ minLength: 1, default: 'default' }), description: 'Slug of the organization whose devices and channels the Paikea-compatible listener serves.' },
  blobStorage: {
    schema: Type.String({ pattern: '^$|^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\\s]*)?$', default: '' }),
    allowed: 'empty, or s3://bucket[/prefix]',
    description: 'Where large file revisions, image values and packages are kept: empty for the folder `<data>/blobs`, or `s3://bucket[/prefix]` for S3-compatible object storage (see the s3* keys).',
  },
  s3Endpoint: { schema: Type.String({ pattern: '^$|^https?://', default: '' }), description: 'URL of the S3-compatible service (MinIO, Ceph, R2...); empty for AWS S3 itself.' },
  s3Region: { schema: Type.String({ minLength: 1, default: 'us-east-1' }), description: 'Region of the bucket.' },
  s3AccessKeyId: { schema: Type.String({ default: '' }), description: 'Access key id for S3; empty takes the AWS SDK default chain (environment, instance role).', secret: true },
  s3SecretAccessKey: { schema: Type.String({ default: '' }), description: 'Secret access key for S3.', secret: true },
  s3ForcePathStyle: { schema: Type.Boolean({ default: true }), description: 'Address the bucket in the path (`host/bucket/key`), as MinIO and most S3-compatible services need; false for virtual-hosted style.' },
  blobThreshold: {
    schema: Type.Integer({ minimum: 0, maximum: 1073741824, default: 16384 }),
    description: 'Size in bytes from which a file revision or image value goes to blob storage instead of the database.',
  },
  ingestBatchSize: { schema: Type.Integer({ minimum: 1, maximum: 100000, default: 2000 }), description: 'Most time series values written in one transaction.' },
  ingestFlushInterval: {
    schema: Type.Integer({ minimum: 0, maximum: 10000, default: 0 }),
    description: 'Milliseconds a value waits for more to fill a batch when nothing is being written; 0 writes at once. Values arriving during a write always go together into the next batch.',
  },
  ingestQueueSize: {
    schema: Type.Integer({ minimum: 1, maximum: 10000000, default: 100000 }),
    description: 'Most values waiting to be written; when full, devices are made to wait (their acknowledgement comes later) instead of the queue growing.',
  },
  retentionInterval: { schema: Type.Integer({ minimum: 1, maximum: 86400, default: 600 }), description: 'Seconds between passes that drop sequence values beyond their maximum count or age.' },
  stateSequences: {
    schema: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), { default: {} }),
    description:
      'Extra reported-state fields recorded as sequences of the device folder: a mapping of field path (`switch:0.apower`, `*` for any component id) to sequence name; added to the Shelly defaults (power, energy, voltage, current, temperature, humidity, illumination, battery).',
  },
  rrduino: { schema: Type.Boolean({ default: true }), description: 'Serve the rrduino TCP line protocol for microcontrollers with a pre-shared key.' },
  rrduinoHost: { schema: Type.String({ minLength: 1, default: '0.0.0.0' }), description: 'Address the rrduino listener binds.' },
  rrduinoPort: { schema: Type.Integer({ minimum: 0, maximum: 65535, default: 60405 }), description: 'TCP port of the rrduino listener (0 picks a free one).' },
  rrduinoIdleTimeout: { schema: Type.Integer({ minimum: 1, maximum: 86400, default: 300 }), description: 'Seconds an rrduino connection may stay silent, or keep an unfinished line, before it is closed.' },
  folderMessageRetention: { schema: Type.Integer({ minimum: 60, maximum: 2592000, default: 3600 }), description: 'Seconds messages addressed to folders are kept.' },
  smtpUrl: {
    schema: Type.String({ pattern: '^$|^smtps?://', default: '' }),
    allowed: 'empty, or smtp://[user:password@]host:port (smtps:// for TLS)',
    description: 'SMTP server through which devices send email (`send_email`) and watchdog alerts go out; empty turns email off.',
    secret: true,
  },
  smtpFrom: { schema: Type.String({ minLength: 3, default: 'fleetd@localhost' }), description: 'Sender address of email fleetd sends.' },
  emailRateLimit: { schema: Type.Integer({ minimum: 0, maximum: 100000, default: 10 }), description: 'Email one device may send per hour; more are dropped.' },
  publicUrl: {
    schema: Type.String({ pattern: '^$|^https?://[^\\s]+[^/\\s]$', default: '' }),
    allowed: 'empty, or an http(s) URL without a trailing slash',
    description: 'The URL devices and clients reach fleetd at (behind a proxy, say), for the links fleetd hands out; empty takes it from each request\'s Host header.',
  },
  maxPackageSize: { schema: Type.Integer({ minimum: 1, maximum: 1099511627776, default: 4294967296 }), description: 'Largest OTA package accepted, in bytes.' },
  packageLinkTtl: { schema: Type.Integer({ minimum: 10, maximum: 604800, default: 3600 }), description: 'Seconds a signed package download link handed to a device stays valid.' },
  requirePackageSignature: { schema: Type.Boolean({ default: false }), description: 'Refuse packages without a detached Ed25519 signature by one of the organization\'s signing keys.' },
  rolloutInterval: { schema: Type.Integer({ minimum: 1, maximum: 3600, default: 10 }), description: 'Seconds between passes of the deployment engine (starting phases, pausing on failures, finishing).' },
  shellAttachTimeout: { schema: Type.Integer({ minimum: 1, maximum: 600, default: 10 }), description: 'Seconds a device has to dial back for a remote shell before the session is refused.' },
  shellIdleTimeout: { schema: Type.Integer({ minimum: 10, maximum: 86400, default: 3600 }), description: 'Seconds a remote shell may pass with no byte either way before it is closed.' },
  actionTimeout: { schema: Type.Integer({ minimum: 1, maximum: 604800, default: 7200 }), description: 'Seconds a device has to report the result of an action it was sent; then the run counts as timed out.' },
  actionQueueSize: { schema: Type.Integer({ minimum: 1, maximum: 10000, default: 100 }), description: 'Most action runs waiting for one device; more are refused (429) until some are sent.' },
  maxFilePullSize: { schema: Type.Integer({ minimum: 1, maximum: 1099511627776, default: 1073741824 }), description: 'Largest file a device may upload when a file is pulled from it, in bytes.' },
  filePullTimeout: { schema: Type.Integer({ minimum: 10, maximum: 604800, default: 600 }), description: 'Seconds a device has to start uploading a file pulled from it; then the pull fails.' },
  rdfmOrg: {
    schema: Type.String({ maxLength: 100, default: '' }),
    allowed: 'empty, or an organization id or slug',
    description: "The organization of RDFM's clients, which know none: where RDFM devices wait and join, and what rdfm-mgmt manages; empty: devices wait for a system admin, and rdfm-mgmt acts on its API key's organization (or its user's only one).",
  },
} satisfies Record<string, KeyDefinition>;

export type ConfigKey = keyof typeof configKeys;
export const configKeyNames = Object.keys(configKeys) as ConfigKey[];

export const configSchema = Type.Object(
  Object.fromEntries(configKeyNames.map((k) => [k, configKeys[k].schema])) as { [K in ConfigKey]: (typeof configKeys)[K]['schema'] },
  { additionalProperties: false },
);

export type Config = Static<typeof configSchema>;

export const envName = (key: string) => `FLEETD_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
export const flagName = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
