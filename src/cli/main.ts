import { Command, CommanderError } from 'commander';
import { FleetError } from '../core/errors.ts';
import { version } from '../version.ts';
import { adminCommand } from './commands/admin.ts';
import { configCommand } from './commands/config.ts';
import { migrateCommand } from './commands/migrate.ts';
import { rrduinoCommand } from './commands/rrduino.ts';
import { serveCommand } from './commands/serve.ts';

export function buildProgram(): Command {
  const program = new Command('fleetd')
    .description('fleetd: a device fleet server. Connect, watch, command and update devices.')
    .version(version)
    .showHelpAfterError()
    .exitOverride();
  for (const command of [serveCommand(), migrateCommand(), configCommand(), adminCommand(), rrduinoCommand()]) program.addCommand(command);
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
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof FleetError) {
      process.stderr.write(`fleetd: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`fleetd: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}
