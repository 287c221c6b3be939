import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { Command } from 'commander';
import { badRequest } from '../../core/errors.ts';
import { clientCommand, connect } from '../client/command.ts';
import { multipartBody } from '../client/multipart.ts';
import { printList, printResult, withJsonOption, type Column } from '../client/output.ts';
import { formatBytes, TransferProgress } from '../client/progress.ts';

/** The fields of the API's Package the CLI shows. */
interface Package {
  id: string;
  version: string;
  deviceType: string;
  metadata: Record<string, string>;
  size: number;
  sha256: string;
  signature: string | null;
  createdAt: string;
}

const packageColumns: Column<Package>[] = [
  { header: 'ID', value: (p) => p.id },
  { header: 'VERSION', value: (p) => p.version },
  { header: 'DEVICE TYPE', value: (p) => p.deviceType },
  { header: 'SIZE', value: (p) => formatBytes(p.size) },
  { header: 'SHA256', value: (p) => `${p.sha256.slice(0, 12)}…` },
  { header: 'SIGNED', value: (p) => (p.signature ? 'yes' : 'no') },
  { header: 'CREATED', value: (p) => p.createdAt },
];

/** `--metadata key=value`, repeatable, into one object; the value may itself hold `=`. */
function collectMetadata(pair: string, previous: Record<string, string> = {}): Record<string, string> {
  const at = pair.indexOf('=');
  if (at <= 0) throw badRequest(`--metadata ${JSON.stringify(pair)} must be key=value`);
  return { ...previous, [pair.slice(0, at)]: pair.slice(at + 1) };
}

function checkedFile(path: string): string {
  if (!existsSync(path) || !statSync(path).isFile()) throw badRequest(`${path} is not a file`);
  return path;
}

export function packagesCommand(): Command {
  const packages = new Command('packages').description('OTA update packages of an organization on a running server');
  packages.addCommand(
    withJsonOption(clientCommand('upload'))
      .description('upload a package (admins): streamed from disk, with a progress bar on a terminal')
      .argument('<file>', 'the update image or archive')
      .requiredOption('--version <version>', 'the software version the package installs')
      .requiredOption('--device-type <type>', 'the device type it is built for')
      .option('--metadata <key=value>', 'a metadata key, such as requires:version=1.0 for a delta package (repeatable)', collectMetadata)
      .option('--signature <base64>', 'detached Ed25519 signature over the SHA-256 of the file, in base64')
      .action(async (path: string, options: Record<string, unknown>) => {
        const file = checkedFile(path);
        const client = connect(options);
        const fields: Record<string, string> = { version: String(options.version), deviceType: String(options.deviceType) };
        if (options.metadata !== undefined) fields.metadata = JSON.stringify(options.metadata);
        if (typeof options.signature === 'string') fields.signature = options.signature;
        const progress = new TransferProgress(statSync(file).size, `Uploading ${basename(file)}`);
        const body = multipartBody(fields, { field: 'file', path: file, onChunk: (bytes) => progress.advance(bytes) });
        let uploaded: Package;
        try {
          uploaded = await client.upload<Package>(client.orgPath('/packages'), body);
        } catch (error) {
          progress.abort();
          throw error;
        }
        progress.finish();
        printResult(options, uploaded, `Uploaded package ${uploaded.id}: version ${uploaded.version} for ${uploaded.deviceType}, ${formatBytes(uploaded.size)}, sha256 ${uploaded.sha256}.`);
      }),
  );
  packages.addCommand(
    withJsonOption(clientCommand('list'))
      .description("list the organization's packages")
      .option('--device-type <type>', 'only packages for this device type')
      .option('--version <version>', 'only packages of this version')
      .action(async (options: Record<string, unknown>) => {
        const client = connect(options);
        const items = await client.listAll<Package>(client.orgPath('/packages'), { deviceType: options.deviceType as string | undefined, version: options.version as string | undefined });
        printList(options, items, packageColumns, 'No packages.');
      }),
  );
  packages.addCommand(
    clientCommand('delete')
      .description('delete a package (admins); refused while a group or an unfinished deployment uses it')
      .argument('<packageId>')
      .action(async (packageId: string, options: Record<string, unknown>) => {
        const client = connect(options);
        await client.delete(client.orgPath(`/packages/${encodeURIComponent(packageId)}`));
        process.stdout.write(`Deleted package ${packageId}.\n`);
      }),
  );
  return packages;
}
