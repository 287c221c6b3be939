import { Command } from 'commander';
import { createLogger } from '../../log.ts';
import { hasSystemAdmin, startServer } from '../../server.ts';
import { configFromOptions, withConfigOptions } from '../config-options.ts';

export function serveCommand(): Command {
  return withConfigOptions(new Command('serve'))
    .description('run the fleetd server (HTTP API, device connections) until SIGTERM or SIGINT')
    .action(async (options: Record<string, unknown>) => {
      const { config } = configFromOptions(options);
      const logger = createLogger(config.logLevel);
      const server = await startServer(config, logger);
      if (!(await hasSystemAdmin(server.services))) {
        process.stderr.write(
          `\nNo admin yet. Create the first one with:\n  npx fleetd admin create you@example.com --org default${config.database.startsWith('sqlite:') ? ` --data ${config.data}` : ' --database <url>'}\n\n`,
        );
      }
      process.stderr.write(`fleetd is serving on ${server.url} (API docs: ${server.url}/api/docs)\n`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ signal }, 'shutting down');
          server.close().then(resolve, (error: unknown) => {
            logger.error({ err: error }, 'shutdown failed');
            process.exitCode = 1;
            resolve();
          });
        };
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    });
}
