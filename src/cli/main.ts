import { Command, CommanderError } from 'commander';
import { FleetError } from '../core/errors.ts';
import { version } from '../version.ts';
import { ApiError } from './client/api-client.ts';
import { adminCommand } from './commands/admin.ts';
import { configCommand } from './commands/config.ts';
import { deploymentsCommand } from './commands/deployments.ts';
import { devicesCommand } from './commands/devices.ts';
import { groupsCommand } from './commands/groups.ts';
import { migrateCommand } from './commands/migrate.ts';
import { packagesCommand } from './commands/packages.ts';
import { rrduinoCommand } from './commands/rrduino.ts';
import { serveCommand } from './commands/serve.ts';

export function buildProgram(): Command {
  const program = new Command('fleetd')
    .description('fleetd: a device fleet server. Connect, watch, command and update devices.')
    .version(version)
    // Program options only before the command name: `packages upload --version 1.2` is the package's version.
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride();
  const serverCommands = [serveCommand(), migrateCommand(), configCommand(), adminCommand(), rrduinoCommand()];
  const clientCommands = [devicesCommand(), packagesCommand(), groupsCommand(), deploymentsCommand()];
  for (const command of serverCommands) program.addCommand(command.helpGroup('Commands on the server machine:'));
  for (const command of clientCommands) program.addCommand(command.helpGroup('Commands against a running server (--url, --key):'));
  for (const command of program.commands) {
    command.exitOverride();
    for (const sub of command.commands) sub.exitOverride();
  }
  return program;
}

/** Runs the CLI; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
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
