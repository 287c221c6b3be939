import type { RdfmRouteOptions } from '../plugin.ts';
import { rfc822 } from '../wire.ts';
import type { LogRow } from './log-store.ts';

/** RDFM's Log. */
export interface RdfmLog {
  id: number;
  /** RFC 822, when the server received it. */
  created: string;
  device_id: number;
  /** RFC 822, the device's clock. */
  device_timestamp: string;
  name: string;
  entry: string;
}

/** Logs as RDFM shows them, their ids and their devices' numbered in one batch per kind. */
export async function rdfmLogs({ ids }: RdfmRouteOptions, rows: LogRow[]): Promise<RdfmLog[]> {
  const logNumbers = await ids.numbers('log', rows.map((row) => row.id));
  const deviceNumbers = await ids.numbers('device', rows.map((row) => row.device_id));
  return rows.map((row) => ({
    id: logNumbers.get(row.id)!,
    created: rfc822(row.created_at),
    device_id: deviceNumbers.get(row.device_id)!,
    device_timestamp: rfc822(row.at),
    name: row.name,
    entry: row.entry,
  }));
}
