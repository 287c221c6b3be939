import { Command, CommanderError } from 'commander';
import { FleetError } from '../core/errors.ts';
import { version } from '../version.ts';
import { ApiError } from './client/api-client.ts';

type CommandGroup = 'server' | 'client';

const groupTitles: Record<CommandGroup, string> = {
  server: 'Commands on the server machine:',
  client: 'Commands against a running server (--url, --key):',
};

/**
 * The commands, each loaded only when it runs or when help lists them all: a client command starts
 * without the modules of the server commands (their configuration schemas alone, TypeBox with them,
 * took most of the second a client command needed to start).
 */
const commands: Array<{ name: string; group: CommandGroup; load: () => Promise<Command> }> = [
  { name: 'serve', group: 'server', load: async () => (await import('./commands/serve.ts')).serveCommand() },
  { name: 'migrate', group: 'server', load: async () => (await import('./commands/migrate.ts')).migrateCommand() },
  { name: 'config', group: 'server', load: async () => (await import('./commands/config.ts')).configCommand() },
  { name: 'admin', group: 'server', load: async () => (await import('./commands/admin.ts')).adminCommand() },
  { name: 'rrduino', group: 'server', load: async () => (await import('./commands/rrduino.ts')).rrduinoCommand() },
  { name: 'devices', group: 'client', load: async () => (await import('./commands/devices.ts')).devicesCommand() },
  { name: 'packages', group: 'client', load: async () => (await import('./commands/packages.ts')).packagesCommand() },
  { name: 'groups', group: 'client', load: async () => (await import('./commands/groups.ts')).groupsCommand() },
  { name: 'deployments', group: 'client', load: async () => (await import('./commands/deployments.ts')).deploymentsCommand() },
];

/** The program with the command `argv` names, or with every command when it names none it knows (help, version, a mistake). */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const program = new Command('fleetd')
    .description('fleetd: a device fleet server. Connect, watch, command and update devices.')
    .version(version)
    // Program options only before the command name: `packages upload --version 1.2` is the package's version.
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride();
  // The program's only options are --help and --version: the first other word is the command.
  const named = commands.find((c) => c.name === argv.find((arg) => !arg.startsWith('-')));
  for (const entry of named ? [named] : commands) program.addCommand((await entry.load()).helpGroup(groupTitles[entry.group]));
  for (const command of program.commands) {
    command.exitOverride();
    for (const sub of command.commands) sub.exitOverride();
  }
  return program;
}

/** Runs the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    await (await buildProgram(argv)).parseAsync(argv, { from: 'user' });
    // A command with a status of its own (`devices shell`: the remote exit code) sets process.exitCode.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    // Commander has printed what was wrong with the command line (or the help, or the version, exit 0).
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof ApiError) {
      process.stderr.write(`fleetd: ${error.message}\n`);
      return 1;
    }
    if (error instanceof FleetError) {
      process.stderr.write(`fleetd: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`fleetd: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}
