import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemActor } from '../../../src/services/actor.ts';
import type { TestServer } from '../../helpers/server.ts';

/** The archives of the example profile of rrduino.md, with humidity beside temperature. */
export const fridgeArchives = ['--step', '60', 'DS:temperature:GAUGE:120:-50:110', 'DS:humidity:GAUGE:120:0:100', 'RRA:AVERAGE:0.5:1:100', 'RRA:AVERAGE:0.5:5:288'];

/** The values of a sequence, read through the time series service as a system admin. */
export async function valuesOf(server: TestServer, path: string): Promise<number[]> {
  const raw = await server.services.series.raw(systemActor.principal, path, { limit: 10_000 });
  return raw.values.map((v) => v.value as number);
}

/** Every stored value of the organization's sequences: what hostile input must leave unchanged. */
export async function storedValueCount(server: TestServer): Promise<number> {
  const row = await server.services.store.db.selectFrom('sequence_values').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Waits until the sequence holds `expected` (the protocol acknowledges nothing: the store is the only witness). */
export async function waitForValues(server: TestServer, path: string, expected: number[], ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  let seen: number[] = [];
  while (Date.now() < end) {
    seen = await valuesOf(server, path).catch(() => []);
    if (seen.length >= expected.length) break;
    await sleep(20);
  }
  assert.deepEqual(seen, expected, path);
}
