import { Option, type Command } from 'commander';
import { configKeyNames, configKeys, flagName, type ConfigKey } from '../config/keys.ts';
import { loadConfig, type LoadedConfig } from '../config/load.ts';

/** Adds `--config FILE` and one flag per configuration key to a command. */
export function withConfigOptions(command: Command): Command {
  command.addOption(new Option('--config <file>', 'configuration file (default: ./fleetd.yaml when present)'));
  for (const key of configKeyNames) {
    command.addOption(new Option(`${flagName(key)} <value>`, configKeys[key].description));
  }
  return command;
}

/** The configuration for a command: defaults < config file < FLEETD_* environment < flags. */
export function configFromOptions(options: Record<string, unknown>): LoadedConfig {
  const flags: Partial<Record<ConfigKey, string>> = {};
  for (const key of configKeyNames) if (typeof options[key] === 'string') flags[key] = options[key];
  return loadConfig({ flags, configFile: typeof options.config === 'string' ? options.config : undefined });
}
