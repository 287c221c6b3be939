import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { badRequest } from '../../core/errors.ts';

/** Where a client command finds the server, and as whom it talks to it. */
export interface ClientSettings {
  /** The server's base URL, without a trailing slash. */
  url: string;
  /** An API key (`fk_...`) or an access token, sent as `Authorization: Bearer`. */
  key: string;
  /** Id or slug of the organization the command works in. */
  org: string;
}

type SettingName = keyof ClientSettings;
type PartialSettings = Partial<Record<SettingName, string>>;

const envNames: Record<SettingName, string> = { url: 'FLEETD_URL', key: 'FLEETD_KEY', org: 'FLEETD_ORG' };

/** The organization `fleetd admin create` makes by default, so a fresh server needs no `--org`. */
const defaultOrg = 'default';

export const defaultClientConfigFile = () => join(homedir(), '.config', 'fleetd', 'client.yaml');

/**
 * Adds the connection options of a client command. `--client-config`, not `--config`: the server
 * commands' `--config` names the server's own configuration file, a different thing.
 */
export function withClientOptions(command: Command): Command {
  const options = [
    new Option('--url <url>', 'URL of the fleetd server (else FLEETD_URL, else url in the client config file)'),
    new Option('--key <key>', 'an API key or access token (else FLEETD_KEY, else key in the client config file)'),
    new Option('--org <org>', `organization id or slug (else FLEETD_ORG, else org in the client config file, else ${defaultOrg})`),
    new Option('--client-config <file>', 'client config file with url, key and org (default: ~/.config/fleetd/client.yaml)'),
  ];
  for (const option of options) command.addOption(option.helpGroup('Server connection:'));
  return command;
}

/** The settings of a command: flags win over the environment, which wins over the config file. */
export function clientSettings(options: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): ClientSettings {
  const explicitFile = typeof options.clientConfig === 'string' ? options.clientConfig : undefined;
  const file = explicitFile ?? defaultClientConfigFile();
  const fromFile = explicitFile !== undefined || existsSync(file) ? readClientConfigFile(file) : {};
  const pick = (name: SettingName): string | undefined => {
    const flag = options[name];
    if (typeof flag === 'string' && flag !== '') return flag;
    const fromEnv = env[envNames[name]];
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    return fromFile[name];
  };
  const url = pick('url');
  const key = pick('key');
  const missing = [url === undefined ? 'url' : undefined, key === undefined ? 'key' : undefined].filter((name): name is 'url' | 'key' => name !== undefined);
  if (missing.length > 0) {
    const ways = missing.map((name) => `--${name}, ${envNames[name]}, or ${name}: in ${file}`).join('; ');
    throw badRequest(`No server ${missing.join(' and ')}: give ${ways}`);
  }
  return { url: normalizeUrl(url!), key: key!, org: pick('org') ?? defaultOrg };
}

function normalizeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw badRequest(`The server URL ${JSON.stringify(url)} is not a URL: give one like http://fleetd.example:8080`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw badRequest(`The server URL ${JSON.stringify(url)} must start with http:// or https://`);
  return url.replace(/\/+$/, '');
}

function readClientConfigFile(file: string): PartialSettings {
  let parsed: unknown;
  try {
    parsed = parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw badRequest(`Cannot read the client config file ${file}: ${(error as Error).message}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw badRequest(`The client config file ${file} must be a mapping with url, key and org`);
  const settings: PartialSettings = {};
  for (const [name, value] of Object.entries(parsed)) {
    if (!(name in envNames)) throw badRequest(`The client config file ${file} has an unknown key ${JSON.stringify(name)}: only url, key and org`);
    if (typeof value !== 'string') throw badRequest(`${name} in the client config file ${file} must be text`);
    settings[name as SettingName] = value;
  }
  return settings;
}
