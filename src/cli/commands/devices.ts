import { Command } from 'commander';
import { clientCommand, connect } from '../client/command.ts';
import { collectList, printList, printResult, withJsonOption, type Column } from '../client/output.ts';
import { resolveDevice } from '../client/resolve.ts';
import { runShell } from '../client/shell-session.ts';

/** The fields of the API's Device the CLI shows. */
interface Device {
  id: string;
  name: string;
  model: string | null;
  firmware: string | null;
  tags: string[];
  online: boolean;
  lastSeenAt: string | null;
}

/** The fields of the API's PendingDevice the CLI shows. */
interface PendingDevice {
  id: string;
  endpoint: string;
  externalId: string;
  state: 'pending' | 'denied';
  info: { name?: unknown; model?: unknown };
  remoteAddress: string | null;
  attempts: number;
  lastSeenAt: string;
}

const deviceColumns: Column<Device>[] = [
  { header: 'ID', value: (d) => d.id },
  { header: 'NAME', value: (d) => d.name },
  { header: 'ONLINE', value: (d) => (d.online ? 'yes' : 'no') },
  { header: 'MODEL', value: (d) => d.model },
  { header: 'FIRMWARE', value: (d) => d.firmware },
  { header: 'TAGS', value: (d) => d.tags.join(',') },
  { header: 'LAST SEEN', value: (d) => d.lastSeenAt },
];

const pendingColumns: Column<PendingDevice>[] = [
  { header: 'ID', value: (p) => p.id },
  { header: 'EXTERNAL ID', value: (p) => p.externalId },
  { header: 'ENDPOINT', value: (p) => p.endpoint },
  { header: 'STATE', value: (p) => p.state },
  { header: 'MODEL', value: (p) => (typeof p.info.model === 'string' ? p.info.model : undefined) },
  { header: 'ATTEMPTS', value: (p) => p.attempts },
  { header: 'ADDRESS', value: (p) => p.remoteAddress },
  { header: 'LAST SEEN', value: (p) => p.lastSeenAt },
];

export function devicesCommand(): Command {
  const devices = new Command('devices').description('devices of an organization on a running server: list, admit, open a shell');
  devices.addCommand(
    withJsonOption(clientCommand('list'))
      .description("list the organization's devices")
      .option('--tag <tags>', 'only devices with every one of these tags (a,b; repeatable)', collectList)
      .option('--online', 'only devices connected now')
      .option('--offline', 'only devices not connected now')
      .option('--search <text>', 'only devices with this text in their name, id or model')
      .action(async (options: Record<string, unknown>) => {
        const client = connect(options);
        const online = options.online ? true : options.offline ? false : undefined;
        const items = await client.listAll<Device>(client.orgPath('/devices'), { tag: options.tag as string[] | undefined, online, q: options.search as string | undefined });
        printList(options, items, deviceColumns, 'No devices.');
      }),
  );
  devices.addCommand(
    withJsonOption(clientCommand('pending'))
      .description('list the devices waiting for admission (admins)')
      .option('--denied', 'list the denied devices instead')
      .action(async (options: Record<string, unknown>) => {
        const client = connect(options);
        const items = await client.listAll<PendingDevice>(client.orgPath('/pending-devices'), { state: options.denied ? 'denied' : 'pending' });
        printList(options, items, pendingColumns, options.denied ? 'No denied devices.' : 'No devices waiting.');
      }),
  );
  devices.addCommand(
    withJsonOption(clientCommand('accept'))
      .description('admit a waiting (or denied) device: it is registered in the organization (admins)')
      .argument('<pendingId>', 'id of the waiting device (see `fleetd devices pending`)')
      .option('--name <name>', 'name of the device (default: what it calls itself)')
      .option('--tags <tags>', 'tags it starts with (a,b; repeatable)', collectList)
      .action(async (pendingId: string, options: Record<string, unknown>) => {
        const client = connect(options);
        const device = await client.post<Device>(client.orgPath(`/pending-devices/${encodeURIComponent(pendingId)}/accept`), { name: options.name, tags: options.tags });
        printResult(options, device, `Accepted ${pendingId}: device ${device.id} (${device.name}).`);
      }),
  );
  devices.addCommand(
    withJsonOption(clientCommand('deny'))
      .description('refuse a waiting device; it stays refused until accepted (admins)')
      .argument('<pendingId>', 'id of the waiting device (see `fleetd devices pending`)')
      .action(async (pendingId: string, options: Record<string, unknown>) => {
        const client = connect(options);
        const pending = await client.post<PendingDevice>(client.orgPath(`/pending-devices/${encodeURIComponent(pendingId)}/deny`));
        printResult(options, pending, `Denied ${pendingId} (${pending.externalId}).`);
      }),
  );
  devices.addCommand(
    clientCommand('shell')
      .description('open a shell on a device (admins; the device needs the shell capability); exits with the remote exit code')
      .argument('<device>', 'device id, or its name when no other device has it')
      .action(async (ref: string, options: Record<string, unknown>) => {
        const client = connect(options);
        const deviceId = await resolveDevice(client, ref);
        // The command's own status: the remote program's exit code, as ssh does.
        process.exitCode = await runShell(client.settings, deviceId, { stdin: process.stdin, stdout: process.stdout });
      }),
  );
  return devices;
}
