import { once } from 'node:events';
import { Command } from 'commander';
import { createLogger } from '../../log.ts';
import { configFromOptions, withConfigOptions } from '../config-options.ts';

export function serveCommand(): Command {
  return withConfigOptions(new Command('serve'))
    .description('run the fleetd server (HTTP API, device connections) until SIGTERM or SIGINT')
    .action(async (options: Record<string, unknown>) => {
      const { config, origin } = configFromOptions(options);
      const logger = createLogger(config.logLevel);
      // The server's modules load only for this command: every other one, a client command above all, starts in a fraction of the time.
      const { hasSystemAdmin, startServer } = await import('../../server.ts');
      // Listening before start-up, so that a signal during migrations still ends in an orderly stop.
      const stopSignal = Promise.race([once(process, 'SIGTERM').then(() => 'SIGTERM'), once(process, 'SIGINT').then(() => 'SIGINT')]);
      const server = await startServer(config, logger);
      if (!(await hasSystemAdmin(server.services))) {
        // The hint must reach this server's database: `--data` finds only the default SQLite file,
        // and a PostgreSQL URL may hold a password, so it is left for the reader to fill in.
        const target = origin.database === 'default' ? `--data ${config.data}` : config.database.startsWith('sqlite:') ? `--database ${config.database}` : '--database <url>';
        process.stderr.write(`\nNo admin yet. Create the first one with:\n  npx fleetd admin create you@example.com --org default ${target}\n\n`);
      }
      process.stderr.write(`fleetd is serving on ${server.url} (API docs: ${server.url}/api/docs)\n`);
      logger.info({ signal: await stopSignal }, 'shutting down');
      await server.close();
    });
}
