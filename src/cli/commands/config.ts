import { Command } from 'commander';
import { stringify } from 'yaml';
import { maskedConfig } from '../../config/load.ts';
import { configKeyNames } from '../../config/keys.ts';
import { configFromOptions, withConfigOptions } from '../config-options.ts';

export function configCommand(): Command {
  return withConfigOptions(new Command('config'))
    .description('print the effective configuration (secrets masked) and where each value came from')
    .option('--json', 'print JSON instead of YAML')
    .action((options: Record<string, unknown>) => {
      const { config, origin } = configFromOptions(options);
      const masked = maskedConfig(config);
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ config: masked, origin }, null, 2)}\n`);
        return;
      }
      // No folding (lineWidth 0): a long value folded onto a second line would take the comment
      // added to its first line into the value.
      const lines = stringify(masked, { lineWidth: 0 }).trimEnd().split('\n');
      // Annotate each top-level key with its source, the way a reader wants to see it.
      const annotated = lines.map((line) => {
        const key = configKeyNames.find((k) => line.startsWith(`${k}:`));
        return key && origin[key] !== 'default' ? `${line}  # ${origin[key]}` : line;
      });
      process.stdout.write(`${annotated.join('\n')}\n`);
    });
}
