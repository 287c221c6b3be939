import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { openBlobStore } from '../../blob/open.ts';
import type { Config } from '../../config/keys.ts';
import { badRequest } from '../../core/errors.ts';
import { systemActor } from '../../services/actor.ts';
import { NodeCache } from '../../services/node-cache.ts';
import { Organizations } from '../../services/organizations.ts';
import { ResourceTree } from '../../services/resources/tree.ts';
import { fromProfileFile, RrduinoProfiles, type NewRrduinoProfile, type RrduinoProfile, type RrduinoProfileFile } from '../../services/rrduino-profiles.ts';
import { openStore } from '../../store/store.ts';
import { configFromOptions, withConfigOptions } from '../config-options.ts';

/** Runs `work` on the profiles of the configured database, as the system (the CLI runs on the server's machine). */
async function withProfiles<T>(config: Config, work: (profiles: RrduinoProfiles, resources: ResourceTree) => Promise<T>): Promise<T> {
  const store = openStore(config.database);
  try {
    await store.migrate();
    const organizations = new Organizations(store, new NodeCache(0));
    const resources = new ResourceTree({ store, organizations, blobs: openBlobStore(config), config });
    return await work(new RrduinoProfiles({ store, organizations, resources }), resources);
  } finally {
    await store.close();
  }
}

/** `--rrd` may be given several times, and each may hold several arguments (`--rrd "--step 60"`). */
const collectRrd = (value: string, previous: string[] = []) => [...previous, ...value.split(/\s+/).filter((arg) => arg !== '')];

function readProfileFile(path: string): RrduinoProfileFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw badRequest(`${path} is not a readable JSON file: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { key?: unknown }).key !== 'string') throw badRequest(`${path} is not an rrduino profile: it has no key`);
  return parsed as RrduinoProfileFile;
}

/** One line of `list`: client id, device, and the sequences (`*`: one per key of its lines). */
const listLine = (profile: RrduinoProfile) => `${profile.clientId}\t${profile.deviceId}\t${profile.sources.join(',') || '*'}\n`;

export function rrduinoCommand(): Command {
  const rrduino = new Command('rrduino').description('manage rrduino clients (the TCP line protocol of microcontrollers with a pre-shared key)');
  rrduino.addCommand(
    withConfigOptions(new Command('add'))
      .description("add an rrduino client, as rrduino's `server.py -c NAME -k KEY`: its device is the organization's device named CLIENT_ID, made when missing")
      .argument('<client_id>', 'what the client says in its hello: letters, digits, _ . -')
      .option('--key <psk>', 'the pre-shared key the client was built with')
      .option('--org <slug>', 'organization of the client', 'default')
      .option('--device <id>', 'link this existing device of the organization instead')
      .option('--rrd <arguments>', 'rrdtool create arguments (--step N, DS:..., RRA:...); repeat, or several in one', collectRrd)
      .option('--update <template>', "rrduino's update template, N:{key1}:{key2} (one reading per DS)")
      .option('--profile <file>', "an rrduino profile file ({key, handler, handler_options: {path, create, update}}); --key overrides its key")
      .action(async (clientId: string, options: Record<string, unknown>) => {
        const { config } = configFromOptions(options);
        const file = typeof options.profile === 'string' ? readProfileFile(options.profile) : undefined;
        if (file && (options.rrd !== undefined || options.update !== undefined)) throw badRequest('Give --rrd and --update, or --profile, not both');
        const key = (options.key as string | undefined) ?? file?.key;
        if (key === undefined) throw badRequest('The client needs its key: --key <psk> (or --profile with one)');
        const input: NewRrduinoProfile = file
          ? { ...fromProfileFile(clientId, { ...file, key }), deviceId: options.device as string | undefined }
          : { clientId, key, deviceId: options.device as string | undefined, rrdArguments: options.rrd as string[] | undefined, updateTemplate: options.update as string | undefined };
        const { profile, folder } = await withProfiles(config, async (profiles, resources) => {
          const made = await profiles.create(systemActor, String(options.org), input);
          return { profile: made, folder: (await resources.deviceFolder(made.deviceId)).path };
        });
        const sequences = profile.sources.length > 0 ? profile.sources.map((source) => `${folder}/${source}`).join(', ') : `${folder}/<key>, made as each key first arrives`;
        process.stdout.write(`Added rrduino client ${profile.clientId} (device ${profile.deviceId}); its readings go to ${sequences}.\n`);
      }),
  );
  rrduino.addCommand(
    withConfigOptions(new Command('list'))
      .description('list the rrduino clients of an organization')
      .option('--org <slug>', 'organization', 'default')
      .action(async (options: Record<string, unknown>) => {
        const { config } = configFromOptions(options);
        const lines = await withProfiles(config, async (profiles) => {
          const found: string[] = [];
          let cursor: string | undefined;
          do {
            const page = await profiles.list(systemActor.principal, String(options.org), { limit: 500, cursor });
            found.push(...page.items.map(listLine));
            cursor = page.nextCursor ?? undefined;
          } while (cursor !== undefined);
          return found;
        });
        process.stdout.write(lines.join(''));
      }),
  );
  rrduino.addCommand(
    withConfigOptions(new Command('remove'))
      .description('remove an rrduino client; its device and values stay')
      .argument('<client_id>')
      .option('--org <slug>', 'organization of the client', 'default')
      .action(async (clientId: string, options: Record<string, unknown>) => {
        const { config } = configFromOptions(options);
        await withProfiles(config, (profiles) => profiles.delete(systemActor, String(options.org), clientId));
        process.stdout.write(`Removed rrduino client ${clientId}.\n`);
      }),
  );
  return rrduino;
}
