import { createInterface } from 'node:readline';
import { FleetError } from '../core/errors.ts';

/** Reads all of standard input (`--password-stdin`), without the trailing newline. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Asks for a password on the terminal without echoing it, twice to catch typos. */
export async function promptPassword(): Promise<string> {
  if (!process.stdin.isTTY) throw new FleetError('bad_request', 'No terminal to ask for a password: use --password-stdin or FLEETD_ADMIN_PASSWORD');
  const first = await askHidden('Password: ');
  const second = await askHidden('Repeat password: ');
  if (first !== second) throw new FleetError('bad_request', 'The passwords do not match');
  return first;
}

function askHidden(question: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const output = rl as unknown as { _writeToOutput: (text: string) => void };
    process.stderr.write(question);
    output._writeToOutput = () => {};
    rl.question('', (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}
