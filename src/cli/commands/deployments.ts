import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { badRequest } from '../../core/errors.ts';
import type { ApiClient } from '../client/api-client.ts';
import { clientCommand, connect } from '../client/command.ts';
import { finishedStatuses, renderDeployment, type Deployment } from '../client/deployment-status.ts';
import { printList, printResult, wantsJson, withJsonOption, type Column } from '../client/output.ts';
import { resolveGroup } from '../client/resolve.ts';

const deploymentColumns: Column<Deployment>[] = [
  { header: 'ID', value: (d) => d.id },
  { header: 'NAME', value: (d) => d.name },
  { header: 'STATUS', value: (d) => d.status },
  { header: 'VERSION', value: (d) => d.targetVersion },
  { header: 'GROUP', value: (d) => d.groupId },
  { header: 'PHASE', value: (d) => `${Math.min(d.currentPhase + 1, d.phases.length)}/${d.phases.length}` },
  { header: 'CREATED', value: (d) => d.createdAt },
];

/** `--phases 1,10%,100%`: a device count or a percentage of the group per phase, in order. */
export function parsePhases(text: string): Array<{ size: number } | { percent: number }> {
  return text.split(',').map((part) => {
    const item = part.trim();
    const percent = /^(\d+(?:\.\d+)?)%$/.exec(item);
    if (percent && Number(percent[1]) > 0 && Number(percent[1]) <= 100) return { percent: Number(percent[1]) };
    if (/^\d+$/.test(item) && Number(item) > 0) return { size: Number(item) };
    throw badRequest(`--phases: ${JSON.stringify(item)} is neither a device count (5) nor a percentage (10%) of the group`);
  });
}

/** `--window 22:00-04:00`: the daily maintenance window in UTC; an end before the start spans midnight. */
export function parseWindow(text: string): { start: string; end: string } {
  const match = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$/.exec(text);
  if (!match) throw badRequest(`--window ${JSON.stringify(text)} must be HH:MM-HH:MM (UTC), such as 22:00-04:00`);
  return { start: `${match[1]}:${match[2]}`, end: `${match[3]}:${match[4]}` };
}

/** `--window-days 1,2,3`: the days of the week of the window, 0 = Sunday. */
function parseDays(text: string): number[] {
  return text.split(',').map((day) => {
    if (!/^[0-6]$/.test(day.trim())) throw badRequest(`--window-days: ${JSON.stringify(day)} is not a day from 0 (Sunday) to 6 (Saturday)`);
    return Number(day);
  });
}

function parseThreshold(text: string): number {
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || value > 100) throw badRequest(`--failure-threshold ${JSON.stringify(text)} must be a percentage from 0 to 100`);
  return value;
}

function parseInterval(text: string): number {
  const value = Number(text);
  if (!(value >= 0.1 && value <= 3600)) throw badRequest(`--interval ${JSON.stringify(text)} must be seconds from 0.1 to 3600`);
  return value;
}

function parseStartAt(text: string): string {
  if (Number.isNaN(Date.parse(text))) throw badRequest(`--start-at ${JSON.stringify(text)} is not a date and time such as 2026-05-01T22:00:00Z`);
  return new Date(text).toISOString();
}

const deploymentPath = (client: ApiClient, id: string, action = '') => client.orgPath(`/deployments/${encodeURIComponent(id)}${action}`);

/**
 * Redraws a deployment's status until it is finished (or Ctrl-C). On a terminal the block is drawn
 * over itself; elsewhere each change is printed below the last, a JSON line each with `--json`.
 */
async function watchDeployment(client: ApiClient, id: string, intervalSeconds: number, json: boolean): Promise<void> {
  const terminal = process.stdout.isTTY && !json;
  let drawnLines = 0;
  let last = '';
  for (;;) {
    const deployment = await client.get<Deployment>(deploymentPath(client, id));
    const lines = json ? [JSON.stringify(deployment)] : renderDeployment(deployment);
    const text = lines.join('\n');
    if (text !== last && terminal) {
      // Lines cut at the terminal's width: a wrapped line would throw off the count of lines to redraw.
      const width = process.stdout.columns || 80;
      const shown = lines.map((line) => line.slice(0, width - 1));
      process.stdout.write(`${drawnLines > 0 ? `\x1b[${drawnLines}F\x1b[J` : ''}${shown.join('\n')}\n`);
      drawnLines = shown.length;
    } else if (text !== last) {
      process.stdout.write(`${last && !json ? '\n' : ''}${text}\n`);
    }
    last = text;
    if (finishedStatuses.has(deployment.status)) return;
    await sleep(intervalSeconds * 1000);
  }
}

/** `pause`, `resume` and `cancel`: a POST on the deployment, then where it stands. */
function transitionCommand(action: 'pause' | 'resume' | 'cancel', description: string, past: string): Command {
  return withJsonOption(clientCommand(action))
    .description(description)
    .argument('<deploymentId>')
    .action(async (id: string, options: Record<string, unknown>) => {
      const client = connect(options);
      const deployment = await client.post<Deployment>(deploymentPath(client, id, `/${action}`));
      printResult(options, deployment, `${past} deployment ${id}: now ${deployment.status}.`);
    });
}

export function deploymentsCommand(): Command {
  const deployments = new Command('deployments').description('phased rollouts of a version to a group, on a running server');
  deployments.addCommand(
    withJsonOption(clientCommand('create'))
      .description('roll a version out to a group (admins), in phases, pausing itself when too many devices fail')
      .requiredOption('--group <group>', 'group id or name; its members now are the deployment’s devices')
      .requiredOption('--version <version>', 'the target version (a package of it must exist)')
      .option('--name <name>', 'a name for people')
      .option('--phases <phases>', 'devices per phase, a count or a percentage of the group: 1,10%,100%', parsePhases)
      .option('--failure-threshold <percent>', "pause when more of a phase's finished devices failed (default 20)", parseThreshold)
      .option('--window <HH:MM-HH:MM>', 'maintenance window in UTC, such as 22:00-04:00', parseWindow)
      .option('--window-days <days>', 'days of the window, 0 (Sunday) to 6: 1,2,3,4,5', parseDays)
      .option('--start-at <time>', 'do not start before this time (ISO 8601)', parseStartAt)
      .action(async (options: Record<string, unknown>) => {
        const window = options.window as { start: string; end: string } | undefined;
        if (options.windowDays !== undefined && window === undefined) throw badRequest('--window-days needs --window');
        const client = connect(options);
        const groupId = await resolveGroup(client, String(options.group));
        const deployment = await client.post<Deployment>(client.orgPath('/deployments'), {
          name: options.name,
          groupId,
          targetVersion: options.version,
          phases: options.phases,
          failureThreshold: options.failureThreshold,
          maintenanceWindow: window && { ...window, days: options.windowDays },
          startAt: options.startAt,
        });
        printResult(options, deployment, `Created deployment ${deployment.id}: version ${deployment.targetVersion} to group ${groupId}, ${deployment.status}.`);
      }),
  );
  deployments.addCommand(
    withJsonOption(clientCommand('list'))
      .description("list the organization's deployments, newest last")
      .action(async (options: Record<string, unknown>) => {
        const client = connect(options);
        printList(options, await client.listAll<Deployment>(client.orgPath('/deployments')), deploymentColumns, 'No deployments.');
      }),
  );
  deployments.addCommand(
    withJsonOption(clientCommand('status'))
      .description("a deployment's status and its devices' progress by phase")
      .argument('<deploymentId>')
      .option('--watch', 'redraw the status until the deployment is finished (Ctrl-C to stop watching)')
      .option('--interval <seconds>', 'seconds between two looks with --watch', parseInterval, 2)
      .action(async (id: string, options: Record<string, unknown>) => {
        const client = connect(options);
        if (options.watch) return watchDeployment(client, id, options.interval as number, wantsJson(options));
        const deployment = await client.get<Deployment>(deploymentPath(client, id));
        printResult(options, deployment, renderDeployment(deployment).join('\n'));
      }),
  );
  deployments.addCommand(transitionCommand('pause', 'pause a deployment (admins): no more devices are offered the update', 'Paused'));
  deployments.addCommand(transitionCommand('resume', 'resume a paused deployment (admins)', 'Resumed'));
  deployments.addCommand(transitionCommand('cancel', 'cancel a deployment (admins): devices not yet updated are not offered the update', 'Cancelled'));
  return deployments;
}
