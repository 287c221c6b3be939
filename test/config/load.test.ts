import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { configKeyNames, configKeys, envName, flagName, type Config, type ConfigKey } from '../../src/config/keys.ts';
import { loadConfig, maskedConfig, type ConfigSources } from '../../src/config/load.ts';
import { FleetError } from '../../src/core/errors.ts';

let cwd: string;
before(() => {
  cwd = mkdtempSync(join(tmpdir(), 'fleetd-config-'));
});
after(() => {
  rmSync(cwd, { recursive: true, force: true });
});

/** A config file in its own folder (so no fleetd.yaml of another test is picked up); returns its path. */
let files = 0;
function configFile(text: string): string {
  const dir = join(cwd, `case-${++files}`);
  mkdirSync(dir);
  const path = join(dir, 'fleetd.yaml');
  writeFileSync(path, text);
  return path;
}

/** loadConfig with nothing from the developer's environment or folder. */
const load = (sources: ConfigSources = {}) => loadConfig({ env: {}, cwd, ...sources });

/** The FleetError loadConfig throws for `sources`. */
function failure(sources: ConfigSources): FleetError {
  try {
    load(sources);
  } catch (error) {
    assert.ok(error instanceof FleetError, `expected a FleetError, got ${String(error)}`);
    return error;
  }
  assert.fail(`loadConfig accepted ${JSON.stringify(sources)}`);
}

describe('loadConfig', () => {
  it('gives the defaults when nothing is configured, with data and the SQLite file made absolute', () => {
    const { config, origin } = load();
    for (const key of configKeyNames) {
      assert.equal(origin[key], 'default', key);
      if (key !== 'data' && key !== 'database') assert.deepEqual(config[key], (configKeys[key].schema as { default?: unknown }).default, key);
    }
    assert.equal(config.port, 7011);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.data, join(cwd, 'fleetd-data'));
    assert.equal(config.database, `sqlite:${join(cwd, 'fleetd-data', 'fleetd.db')}`);
    assert.deepEqual(config.oidcRoleMap, {});
  });

  it('does not share the default objects between two loads', () => {
    const first = load().config;
    (first.oidcRoleMap as Record<string, string>).x = 'admin';
    assert.deepEqual(load().config.oidcRoleMap, {});
  });

  it('reads fleetd.yaml from the working folder when present', () => {
    const file = configFile('port: 8080\nlogLevel: debug\n');
    const { config, origin } = load({ cwd: join(file, '..') });
    assert.equal(config.port, 8080);
    assert.equal(config.logLevel, 'debug');
    assert.equal(origin.port, file);
    assert.equal(origin.host, 'default');
  });

  it('takes flags over the environment over the file over the defaults, and says where each value came from', () => {
    const file = configFile('port: 1001\nhost: file.example\ndata: from-file\nbodyLimit: 4096\n');
    const dir = join(file, '..');
    const { config, origin } = load({
      cwd: dir,
      env: { FLEETD_PORT: '1002', FLEETD_HOST: 'env.example', FLEETD_LOG_LEVEL: 'warn' },
      flags: { port: '1003', logLevel: 'error' },
    });
    assert.deepEqual(
      { port: config.port, host: config.host, data: config.data, bodyLimit: config.bodyLimit, logLevel: config.logLevel, trustProxy: config.trustProxy },
      { port: 1003, host: 'env.example', data: join(dir, 'from-file'), bodyLimit: 4096, logLevel: 'error', trustProxy: false },
    );
    assert.equal(origin.port, '--port');
    assert.equal(origin.host, 'FLEETD_HOST');
    assert.equal(origin.data, file);
    assert.equal(origin.bodyLimit, file);
    assert.equal(origin.logLevel, '--log-level');
    assert.equal(origin.trustProxy, 'default');
  });

  it('reads --config FILE relative to the working folder instead of fleetd.yaml', () => {
    const yaml = configFile('port: 1111\n');
    const other = join(yaml, '..', 'other.yaml');
    writeFileSync(other, 'port: 2222\n');
    const { config, origin } = load({ cwd: join(yaml, '..'), configFile: 'other.yaml' });
    assert.equal(config.port, 2222);
    assert.equal(origin.port, other);
  });

  it('takes an empty config file as no settings', () => {
    const file = configFile('# nothing here yet\n');
    const { config, origin } = load({ configFile: file });
    assert.equal(config.port, 7011);
    assert.equal(origin.port, 'default');
  });

  it('parses environment values as YAML: numbers, booleans and maps', () => {
    const { config, origin } = load({
      env: {
        FLEETD_PORT: '8081',
        FLEETD_TRUST_PROXY: 'true',
        FLEETD_COOKIE_SECURE: 'false',
        FLEETD_OIDC_ROLE_MAP: '{a: admin, fleet-ops: operator}',
        FLEETD_LOG_LEVEL: 'debug',
      },
    });
    assert.equal(config.port, 8081);
    assert.equal(config.trustProxy, true);
    assert.equal(config.cookieSecure, false);
    assert.deepEqual(config.oidcRoleMap, { a: 'admin', 'fleet-ops': 'operator' });
    assert.equal(config.logLevel, 'debug');
    assert.equal(origin.oidcRoleMap, 'FLEETD_OIDC_ROLE_MAP');
  });

  it('parses flag values as YAML too', () => {
    const { config } = load({ flags: { port: '8082', trustProxy: 'true', oidcRoleMap: '{"b": "viewer"}' } });
    assert.equal(config.port, 8082);
    assert.equal(config.trustProxy, true);
    assert.deepEqual(config.oidcRoleMap, { b: 'viewer' });
  });

  it('keeps the text of string keys as it is, even when it looks like a number or YAML', () => {
    const numericSecret = '12345678901234567890123456789012345678';
    const { config } = load({
      env: {
        FLEETD_HOST: '0.0.0.0',
        FLEETD_JWT_SECRET: numericSecret,
        FLEETD_OIDC_AUDIENCE: '123',
        FLEETD_OIDC_ORGANIZATION: 'true',
        FLEETD_OIDC_ROLES_CLAIM: 'a: b',
      },
      flags: { data: '007' },
    });
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.jwtSecret, numericSecret);
    assert.equal(config.oidcAudience, '123');
    assert.equal(config.oidcOrganization, 'true');
    assert.equal(config.oidcRolesClaim, 'a: b');
    assert.equal(config.data, join(cwd, '007'));
  });

  it('ignores flags that are not configuration keys and FLEETD_ variables of other tools', () => {
    const { config } = load({ env: { FLEETD_ADMIN_PASSWORD: 'x', FLEETD_TEST_POSTGRES: 'y' }, flags: { org: 'x' } as ConfigSources['flags'] });
    assert.equal(config.port, 7011);
  });

  it('fails clearly when the --config file does not exist', () => {
    const error = failure({ configFile: 'missing.yaml' });
    assert.equal(error.code, 'validation_failed');
    assert.match(error.message, /Cannot read the config file/);
    assert.ok(error.message.includes(join(cwd, 'missing.yaml')), error.message);
  });

  it('fails clearly on a file that is not valid YAML', () => {
    const file = configFile('port: [8080\nhost: x\n');
    const error = failure({ configFile: file });
    assert.equal(error.code, 'validation_failed');
    assert.ok(error.message.includes(`The config file ${file} is not valid YAML`), error.message);
  });

  it('fails clearly on a file that is not a mapping', () => {
    for (const text of ['- port\n- host\n', 'just some text\n', '42\n']) {
      const file = configFile(text);
      const error = failure({ configFile: file });
      assert.ok(error.message.includes(`The config file ${file} must be a mapping`), error.message);
    }
  });

  it('names an unknown key of the file and suggests the key meant', () => {
    const file = configFile('Port: 8080\nlog_level: debug\n');
    const error = failure({ configFile: file });
    assert.equal(error.code, 'validation_failed');
    assert.ok(error.message.includes(`Port (in ${file}) is not a configuration key (did you mean port?)`), error.message);
    assert.ok(error.message.includes(`log_level (in ${file}) is not a configuration key (did you mean logLevel?)`), error.message);
  });

  it('lists the known keys when an unknown key resembles none', () => {
    const file = configFile('colour: blue\n');
    const error = failure({ configFile: file });
    assert.ok(error.message.includes(`colour (in ${file}) is not a configuration key; known keys: ${configKeyNames.join(', ')}`), error.message);
  });

  it('reports every invalid key at once, one per line', () => {
    const error = failure({ env: { FLEETD_PORT: 'abc', FLEETD_LOG_LEVEL: 'loud' } });
    assert.deepEqual(error.details, [
      'port = "abc" (from FLEETD_PORT) is not allowed: a whole number from 0 to 65535',
      'logLevel = "loud" (from FLEETD_LOG_LEVEL) is not allowed: one of "fatal", "error", "warn", "info", "debug", "trace", "silent"',
    ]);
    assert.equal(error.message, `Invalid configuration:\n  ${(error.details as string[]).join('\n  ')}`);
  });

  it('shows a map value that breaks the role map, and the roles allowed', () => {
    const error = failure({ env: { FLEETD_OIDC_ROLE_MAP: '{a: superuser}' } });
    assert.deepEqual(error.details, [
      'oidcRoleMap = {"a":"superuser"} (from FLEETD_OIDC_ROLE_MAP) is not allowed: a mapping whose values are one of "viewer", "operator", "admin", "owner", "system_admin"',
    ]);
  });

  it('requires an http(s) oidcJwksUrl when oidcIssuer is set', () => {
    const missing = failure({ env: { FLEETD_OIDC_ISSUER: 'https://id.example/realms/fleet' } });
    assert.deepEqual(missing.details, ['oidcJwksUrl = "" is not allowed: an http(s) URL, required when oidcIssuer is set']);
    const notHttp = failure({ env: { FLEETD_OIDC_ISSUER: 'https://id.example/realms/fleet' }, flags: { oidcJwksUrl: 'ftp://id.example/certs' } });
    assert.deepEqual(notHttp.details, ['oidcJwksUrl = "ftp://id.example/certs" (from --oidc-jwks-url) is not allowed: an http(s) URL, required when oidcIssuer is set']);
    const { config } = load({ env: { FLEETD_OIDC_ISSUER: 'https://id.example/realms/fleet', FLEETD_OIDC_JWKS_URL: 'https://id.example/certs' } });
    assert.equal(config.oidcJwksUrl, 'https://id.example/certs');
  });
});

/**
 * Values to try on every key, as YAML text (what a file holds after `key: `, or an environment
 * variable or flag holds). Each key must refuse at least one of them from each source that can
 * hold a wrong value, with a message that helps.
 */
const candidates = ['abc', "''", '', 'x', '-1', '1.5', '99999999999', 'maybe', '[1, 2]', '{a: superuser}', 'ftp://nowhere'];

type Source = 'file' | 'env' | 'flag';

interface Refusal {
  source: Source;
  text: string;
  error: FleetError;
  /** Where the message must say the value came from. */
  from: string;
}

/** The candidates `key` refuses from `source`, where the one problem reported is about `key`. */
function refusals(key: ConfigKey, source: Source): Refusal[] {
  const found: Refusal[] = [];
  for (const text of candidates) {
    let sources: ConfigSources;
    let from: string;
    if (source === 'file') {
      from = configFile(`${key}: ${text}\n`);
      sources = { configFile: from };
    } else if (source === 'env') {
      from = envName(key);
      sources = { env: { [from]: text } };
    } else {
      from = flagName(key);
      sources = { flags: { [key]: text } };
    }
    try {
      load(sources);
      continue;
    } catch (error) {
      assert.ok(error instanceof FleetError, `${key} from ${source} = ${text}: expected a FleetError, got ${String(error)}`);
      const problems = error.details as string[];
      // A value some other check refuses (oidcIssuer without oidcJwksUrl) is not this key's problem.
      if (problems.length !== 1 || !problems[0]!.startsWith(`${key} = `)) continue;
      found.push({ source, text, error, from });
    }
  }
  return found;
}

/** The ways a refused value may be shown: as parsed YAML, or as the text given. */
function shownValues(text: string): string[] {
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch {
    parsed = text;
  }
  return [JSON.stringify(parsed ?? null), JSON.stringify(text)];
}

/** Words of the schema that the "allowed" part of the message must contain. */
function expectedAllowed(key: ConfigKey): string[] {
  const def: { schema: object; allowed?: string } = configKeys[key];
  if (def.allowed) return [def.allowed];
  const schema = def.schema as Record<string, unknown>;
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as Array<{ const: unknown }>).map((o) => JSON.stringify(o.const));
  if (schema.type === 'integer') return [String(schema.minimum), String(schema.maximum)];
  if (schema.type === 'boolean') return ['true', 'false'];
  if (schema.type === 'object') return ['mapping'];
  return [];
}

/** Keys whose value, given as text, is always a valid text: only a file can give them a wrong type. */
const anyText = (key: ConfigKey) => {
  const schema = configKeys[key].schema as object as Record<string, unknown>;
  return schema.type === 'string' && schema.minLength === undefined && schema.pattern === undefined;
};

describe('every configuration key refuses an invalid value with a message that helps', () => {
  for (const key of configKeyNames) {
    it(key, () => {
      const all: Refusal[] = [];
      for (const source of ['file', 'env', 'flag'] as const) {
        const found = refusals(key, source);
        if (source === 'file' || !anyText(key)) {
          assert.ok(found.length > 0, `${key}: none of ${JSON.stringify(candidates)} is refused from the ${source}; add an invalid candidate for it`);
        }
        all.push(...found);
      }
      for (const { source, text, error, from } of all) {
        const message = error.message;
        const line = (error.details as string[])[0]!;
        const context = `${key} from ${source} = ${JSON.stringify(text)}: ${message}`;
        assert.equal(error.code, 'validation_failed', context);
        assert.ok(line.startsWith(`${key} = `), `names the key: ${context}`);
        assert.ok(shownValues(text).some((shown) => line.includes(` = ${shown} `)), `shows the value: ${context}`);
        assert.ok(line.includes(`(from ${from})`), `names the source ${from}: ${context}`);
        const allowed = line.split(' is not allowed: ')[1];
        assert.ok(allowed && allowed !== 'a valid value', `says what is allowed: ${context}`);
        for (const words of expectedAllowed(key)) assert.ok(allowed.includes(words), `says what is allowed (${words}): ${context}`);
        assert.ok(message.includes(line), context);
      }
    });
  }
});

describe('maskedConfig', () => {
  it('hides the JWT secret and a PostgreSQL password, and keeps the rest', () => {
    const { config } = load({
      env: { FLEETD_JWT_SECRET: 'a-very-secret-signing-key-of-40-characters', FLEETD_DATABASE: 'postgres://fleet:s3cr%40t@db.example:5433/fleet?sslmode=require' },
      flags: { port: '9000' },
    });
    const masked = maskedConfig(config);
    assert.equal(masked.jwtSecret, '***');
    assert.equal(masked.database, 'postgres://fleet:***@db.example:5433/fleet?sslmode=require');
    assert.ok(!JSON.stringify(masked).includes('s3cr'), JSON.stringify(masked));
    for (const key of configKeyNames) {
      if (key !== 'jwtSecret' && key !== 'database') assert.deepEqual(masked[key], config[key], key);
    }
    assert.deepEqual(Object.keys(masked), configKeyNames);
  });

  it('leaves empty secrets, a SQLite URL and a password-less PostgreSQL URL as they are', () => {
    const config: Config = load().config;
    assert.deepEqual(maskedConfig(config), { ...config });
    const noPassword = load({ env: { FLEETD_DATABASE: 'postgres://fleet@db.example/fleet' } }).config;
    assert.equal(maskedConfig(noPassword).database, 'postgres://fleet@db.example/fleet');
  });
});
