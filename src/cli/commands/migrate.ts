import { Command } from 'commander';
import { openStore } from '../../store/store.ts';
import { configFromOptions, withConfigOptions } from '../config-options.ts';

export function migrateCommand(): Command {
  return withConfigOptions(new Command('migrate'))
    .description('apply pending database migrations (the server also applies them when it starts)')
    .option('--status', 'only list the pending migrations')
    .action(async (options: Record<string, unknown>) => {
      const { config } = configFromOptions(options);
      const store = openStore(config.database);
      try {
        if (options.status) {
          const pending = await store.pendingMigrations();
          process.stdout.write(pending.length ? `pending: ${pending.join(', ')}\n` : 'up to date\n');
          return;
        }
        const applied = await store.migrate();
        process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'up to date\n');
      } finally {
        await store.close();
      }
    });
}
