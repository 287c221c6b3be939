import { Command } from 'commander';
import { ApiClient } from './api-client.ts';
import { clientSettings, withClientOptions } from './settings.ts';

/** A command that talks to a running server: it takes the connection options. */
export const clientCommand = (name: string): Command => withClientOptions(new Command(name));

/** The API client of a command, from its flags, the environment and the client config file. */
export const connect = (options: Record<string, unknown>): ApiClient => new ApiClient(clientSettings(options));
