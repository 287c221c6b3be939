import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { TSchema } from 'typebox';
import { FleetError } from '../core/errors.ts';
import { compileSchema } from '../core/validation.ts';
import { configKeyNames, configKeys, configSchema, envName, flagName, type Config, type ConfigKey, type KeyDefinition } from './keys.ts';

export interface ConfigSources {
  /** Flag values as given on the command line (text), by key. */
  flags?: Partial<Record<ConfigKey, string>>;
  env?: NodeJS.ProcessEnv;
  /** `--config FILE`; without it `fleetd.yaml` in `cwd` is read when present. */
  configFile?: string;
  cwd?: string;
}

export interface LoadedConfig {
  config: Config;
  /** Where each key's value came from: `default`, a file path, `FLEETD_X` or `--x`. */
  origin: Record<ConfigKey, string>;
}

const validate = compileSchema<Config>(configSchema);

/** Reads defaults, the config file, the environment and flags (each overriding the one before), then validates. */
export function loadConfig(sources: ConfigSources = {}): LoadedConfig {
  const env = sources.env ?? process.env;
  const cwd = sources.cwd ?? process.cwd();
  const values: Record<string, unknown> = {};
  const origin = Object.fromEntries(configKeyNames.map((k) => [k, 'default'])) as Record<ConfigKey, string>;
  const problems: string[] = [];

  for (const key of configKeyNames) values[key] = structuredClone((configKeys[key].schema as { default?: unknown }).default);

  const file = sources.configFile ? resolve(cwd, sources.configFile) : resolve(cwd, 'fleetd.yaml');
  if (sources.configFile || existsSync(file)) {
    for (const [key, value] of Object.entries(readConfigFile(file))) {
      if (!isConfigKey(key)) {
        problems.push(`${key} (in ${file}) is not a configuration key${suggest(key)}`);
        continue;
      }
      values[key] = value;
      origin[key] = file;
    }
  }

  for (const key of configKeyNames) {
    const text = env[envName(key)];
    if (text === undefined) continue;
    values[key] = parseText(key, text);
    origin[key] = envName(key);
  }

  for (const [key, text] of Object.entries(sources.flags ?? {})) {
    if (text === undefined || !isConfigKey(key)) continue;
    values[key] = parseText(key, text);
    origin[key] = flagName(key);
  }

  if (!validate(values)) {
    const seen = new Set<string>();
    for (const error of validate.errors ?? []) {
      const key = error.instancePath.split('/')[1] as ConfigKey | undefined;
      if (!key || seen.has(key)) continue;
      seen.add(key);
      problems.push(describeProblem(key, values[key], origin[key]));
    }
  }
  const config = values as Config;
  if (problems.length === 0) problems.push(...crossChecks(config, origin));
  if (problems.length > 0) {
    throw new FleetError('validation_failed', `Invalid configuration:\n  ${problems.join('\n  ')}`, { details: problems });
  }
  if (config.database === '') config.database = `sqlite:${resolve(cwd, config.data, 'fleetd.db')}`;
  config.data = resolve(cwd, config.data);
  return { config, origin };
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new FleetError('validation_failed', `Cannot read the config file ${file}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new FleetError('validation_failed', `The config file ${file} is not valid YAML: ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new FleetError('validation_failed', `The config file ${file} must be a mapping of keys to values`);
  }
  return parsed as Record<string, unknown>;
}

/** Environment and flag values are YAML, so numbers, booleans, lists and maps can be given as text. */
function parseText(key: ConfigKey, text: string): unknown {
  const schema = configKeys[key].schema as TSchema & { type?: string };
  if (schema.type === 'string') return text;
  try {
    return parseYaml(text);
  } catch {
    return text;
  }
}

function describeProblem(key: ConfigKey, value: unknown, from: string): string {
  const where = from === 'default' ? '' : ` (from ${from})`;
  const def: KeyDefinition = configKeys[key];
  return `${key} = ${JSON.stringify(value)}${where} is not allowed: ${def.allowed ?? allowed(def.schema)}`;
}

/** What a key accepts, in words. */
function allowed(schema: TSchema): string {
  const s = schema as Record<string, unknown>;
  if (Array.isArray(s.anyOf)) return `one of ${(s.anyOf as Array<{ const: unknown }>).map((o) => JSON.stringify(o.const)).join(', ')}`;
  switch (s.type) {
    case 'integer':
      return `a whole number from ${String(s.minimum)} to ${String(s.maximum)}`;
    case 'boolean':
      return 'true or false';
    case 'string':
      if (s.minLength === 1) return 'a non-empty text';
      return s.minLength ? `a text of at least ${String(s.minLength)} characters` : 'a text';
    case 'object':
      return `a mapping whose values are ${allowed(s.additionalProperties as TSchema ?? (Object.values(s.patternProperties as object)[0] as TSchema))}`;
    default:
      return 'a valid value';
  }
}

function crossChecks(config: Config, origin: Record<ConfigKey, string>): string[] {
  const problems: string[] = [];
  if (config.oidcIssuer !== '' && !/^https?:\/\//.test(config.oidcJwksUrl)) {
    problems.push(
      `oidcJwksUrl = ${JSON.stringify(config.oidcJwksUrl)}${origin.oidcJwksUrl === 'default' ? '' : ` (from ${origin.oidcJwksUrl})`} is not allowed: an http(s) URL, required when oidcIssuer is set`,
    );
  }
  return problems;
}

const isConfigKey = (key: string): key is ConfigKey => Object.hasOwn(configKeys, key);

function suggest(key: string): string {
  const lower = key.toLowerCase().replace(/[-_]/g, '');
  const match = configKeyNames.find((k) => k.toLowerCase() === lower);
  return match ? ` (did you mean ${match}?)` : `; known keys: ${configKeyNames.join(', ')}`;
}

/** The effective configuration with secrets masked, for `fleetd config` and the start-up log. */
export function maskedConfig(config: Config): Record<string, unknown> {
  return Object.fromEntries(
    configKeyNames.map((key) => {
      const value = config[key];
      const def: KeyDefinition = configKeys[key];
      if (!def.secret || value === '') return [key, value];
      return [key, key === 'database' ? maskUrlPassword(String(value)) : '***'];
    }),
  );
}

/** Keeps a database URL readable but hides its password. */
function maskUrlPassword(value: string): string {
  if (!value.startsWith('postgres')) return value;
  try {
    const url = new URL(value);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '***';
  }
}
