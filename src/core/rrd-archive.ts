import { badRequest } from './errors.ts';
import type { ConsolidationFunction, RrdDefinition } from './rrd.ts';

/**
 * The round-robin archives of one sequence, computed as rrdtool's `rrd_update.c` (1.4 and later)
 * computes them, so that an archive fed the same updates holds the same rows as an rrdtool file:
 *
 * - Each update turns its value into a rate (GAUGE as given, COUNTER and DERIVE the difference to
 *   the previous value per second, ABSOLUTE the value per second) that holds for every second since
 *   the previous update. An update later than the heartbeat, an unknown value, or a rate outside
 *   [min, max] leaves those seconds unknown.
 * - A primary point (PDP) ends on every multiple of the step since the epoch and is the average rate
 *   over its known seconds. As in rrdtool, it is unknown when the update that completes it comes
 *   later than the heartbeat, or when more than half a step was unknown *before* that update (the
 *   unknown stretch the completing update itself brings is not counted, only left out of the
 *   average). When an update crosses several step boundaries, every primary point it completes
 *   gets the same value: the average over everything since the last completed point.
 * - A row of an archive ends on a multiple of step × steps and consolidates its `steps` primary
 *   points with its function; it is unknown when more than xff × steps of them are unknown.
 *
 * One difference: rrdtool counts unknown time in whole seconds (a rounding its comments regret);
 * fleetd keeps fractions, which only matters for times with fractions of seconds.
 */

export interface RrdState {
  /** Seconds (float) of the last accepted update. */
  lastUpdate: number;
  /** Previous raw value (the base of COUNTER and DERIVE rates), null unknown. */
  lastValue: number | null;
  /** Rate × seconds known so far in the current primary point. */
  pdpValue: number;
  /** Unknown seconds in the current primary point. */
  pdpUnknown: number;
  /**
   * The row being consolidated in each archive: `value` is the sum of rate × points (AVERAGE), the
   * minimum, maximum or last point so far, null before any known point.
   */
  archives: Array<{ value: number | null; unknownPdps: number }>;
}

/** A row to store: `t` is the end of its interval (s), `slot` its place, `(t / (step × steps)) % rows`. */
export interface RrdRowWrite {
  archive: number;
  slot: number;
  t: number;
  value: number | null;
}

const counterWrap32 = 2 ** 32;
const counterWrap64 = 2 ** 64 - 2 ** 32;
/** Fewer known seconds than this are none: rounding must not turn rrdtool's 0 / 0 into 0. */
const minKnownSeconds = 1e-6;
/** Most updates complete no row; frozen so that a caller cannot add to the shared array. */
const noRows = Object.freeze([]) as unknown as RrdRowWrite[];

/** The state of archives that start at `start` (s): what came before is unknown, as rrdtool create does. */
export function createRrdState(definition: RrdDefinition, start: number): RrdState {
  const pdpUnknown = start % definition.step;
  const pdpIndex = (start - pdpUnknown) / definition.step;
  return {
    lastUpdate: start,
    lastValue: null,
    pdpValue: 0,
    pdpUnknown,
    archives: definition.archives.map((archive) => ({ value: null, unknownPdps: pdpIndex % archive.steps })),
  };
}

/** The rate an update brings for the seconds since the previous one; NaN when unknown. */
function rateOf(definition: RrdDefinition, state: RrdState, interval: number, value: number | null): number {
  const source = definition.source;
  if (value === null || !Number.isFinite(value) || interval > source.heartbeat) return NaN;
  let rate: number;
  if (source.type === 'GAUGE') rate = value;
  else if (source.type === 'ABSOLUTE') rate = value / interval;
  else {
    if (state.lastValue === null) return NaN;
    let delta = value - state.lastValue;
    // rrdtool's guess at a wrapped counter: 32 bits, and if that is not enough, 64 bits.
    if (source.type === 'COUNTER' && delta < 0) {
      delta += counterWrap32;
      if (delta < 0) delta += counterWrap64;
    }
    rate = delta / interval;
  }
  if ((source.min !== null && rate < source.min) || (source.max !== null && rate > source.max)) return NaN;
  return rate;
}

/**
 * Applies one update at `t` (s) with `value` (null unknown). The state is changed in place and
 * returned (copy it first to keep the previous one); `rows` lists the rows completed, at most `rows`
 * per archive since older ones would be overwritten at once. `rows` may be a shared frozen empty
 * array. Throws badRequest, leaving the state as it was, for times not after the last update.
 */
export function updateRrd(definition: RrdDefinition, state: RrdState, t: number, value: number | null): { state: RrdState; rows: RrdRowWrite[] } {
  const previous = state.lastUpdate;
  if (!(t > previous)) throw badRequest(`The archives were last updated at ${previous} s; an update at ${t} s comes too late`);
  const step = definition.step;
  const interval = t - previous;
  const rate = rateOf(definition, state, interval, value);
  const known = !Number.isNaN(rate);
  state.lastUpdate = t;
  state.lastValue = value !== null && Number.isFinite(value) ? value : null;

  const pdpStart = previous - (previous % step);
  const pdpNow = t - (t % step);
  if (pdpNow === pdpStart) {
    if (known) state.pdpValue += rate * interval;
    else state.pdpUnknown += interval;
    return { state, rows: noRows };
  }

  const preInterval = pdpNow - previous;
  let pdp = NaN;
  if (interval <= definition.source.heartbeat && state.pdpUnknown <= step / 2) {
    const knownSeconds = pdpNow - pdpStart - state.pdpUnknown - (known ? 0 : preInterval);
    if (knownSeconds >= minKnownSeconds) pdp = (state.pdpValue + (known ? rate * preInterval : 0)) / knownSeconds;
  }
  const postInterval = t - pdpNow;
  state.pdpValue = known ? rate * postInterval : 0;
  state.pdpUnknown = known ? 0 : postInterval;

  const rows: RrdRowWrite[] = [];
  const firstPdp = pdpStart / step;
  const elapsed = Math.round((pdpNow - pdpStart) / step);
  for (let archive = 0; archive < definition.archives.length; archive++) {
    consolidate(definition, archive, state, firstPdp, elapsed, pdp, rows);
  }
  return { state, rows };
}

/** Adds `count` primary points of value `pdp` (known) to a row being consolidated. */
function accumulate(cf: ConsolidationFunction, current: number | null, pdp: number, count: number): number {
  if (current === null) return cf === 'AVERAGE' ? pdp * count : pdp;
  switch (cf) {
    case 'AVERAGE': return current + pdp * count;
    case 'MIN': return Math.min(current, pdp);
    case 'MAX': return Math.max(current, pdp);
    case 'LAST': return pdp;
  }
}

/** The value of a completed row from what it gathered and its last `count` points of value `pdp` (null unknown). */
function finish(cf: ConsolidationFunction, current: number | null, pdp: number | null, count: number, knownPdps: number): number | null {
  if (cf === 'LAST') return pdp;
  if (pdp === null) return current === null ? null : cf === 'AVERAGE' ? current / knownPdps : current;
  if (cf === 'AVERAGE') return ((current ?? 0) + pdp * count) / knownPdps;
  return accumulate(cf, current, pdp, count);
}

/** Feeds `elapsed` primary points of value `pdp` (NaN unknown), the first of them number `firstPdp`, to one archive. */
function consolidate(definition: RrdDefinition, archive: number, state: RrdState, firstPdp: number, elapsed: number, pdp: number, rows: RrdRowWrite[]): void {
  const { cf, xff, steps, rows: rowCount } = definition.archives[archive]!;
  const prep = state.archives[archive]!;
  const known = !Number.isNaN(pdp);
  const toRowEnd = steps - (firstPdp % steps);
  if (elapsed < toRowEnd) {
    if (known) prep.value = accumulate(cf, prep.value, pdp, elapsed);
    else prep.unknownPdps += elapsed;
    return;
  }

  const unknownPdps = prep.unknownPdps + (known ? 0 : toRowEnd);
  const first = unknownPdps > steps * xff ? null : finish(cf, prep.value, known ? pdp : null, toRowEnd, steps - unknownPdps);
  // Points past the last completed row start the next one.
  const carried = (elapsed - toRowEnd) % steps;
  prep.value = known && carried > 0 ? (cf === 'AVERAGE' ? pdp * carried : pdp) : null;
  prep.unknownPdps = known ? 0 : carried;

  const resolution = definition.step * steps;
  const firstEnd = (firstPdp + toRowEnd) * definition.step;
  const completed = Math.floor((elapsed - toRowEnd) / steps) + 1;
  // Rows after the first are made of the repeated point only, whatever the function.
  for (let i = Math.max(0, completed - rowCount); i < completed; i++) {
    const t = firstEnd + i * resolution;
    rows.push({ archive, slot: (t / resolution) % rowCount, t, value: i === 0 ? first : known ? pdp : null });
  }
}

/**
 * rrdtool fetch's choice of archive for `cf`: among those reaching back to `start` from `now`, the
 * one whose resolution is closest to `resolution` (s; the finest when not given); when none reaches
 * that far, the one covering most of [start, end]. Throws badRequest when no archive keeps `cf`.
 */
export function chooseArchive(definition: RrdDefinition, cf: ConsolidationFunction, start: number, end: number, now: number, resolution = 0): { archive: number; resolution: number } {
  let best: { archive: number; resolution: number } | undefined;
  let bestDistance = Infinity;
  let partial: { archive: number; resolution: number } | undefined;
  let partialCover = -Infinity;
  definition.archives.forEach((archive, index) => {
    if (archive.cf !== cf) return;
    const archiveResolution = definition.step * archive.steps;
    const oldest = now - (now % archiveResolution) - archiveResolution * archive.rows;
    if (oldest <= start) {
      const distance = Math.abs(resolution - archiveResolution);
      if (distance < bestDistance) {
        best = { archive: index, resolution: archiveResolution };
        bestDistance = distance;
      }
    } else if (end - oldest > partialCover) {
      partial = { archive: index, resolution: archiveResolution };
      partialCover = end - oldest;
    }
  });
  const chosen = best ?? partial;
  if (!chosen) throw badRequest(`The archives keep no ${cf} values`);
  return chosen;
}

/**
 * The points of one archive for [start, end] (s): one per row interval that holds any instant of
 * the range, each at the interval's end (`start ≤ t < end + resolution`), null where no row is
 * stored or its slot now holds another time.
 */
export function archiveSeries(definition: RrdDefinition, archive: number, rows: Array<{ slot: number; t: number; value: number | null }>, start: number, end: number): Array<[number, number | null]> {
  const archiveDefinition = definition.archives[archive];
  if (!archiveDefinition) throw badRequest(`There is no archive ${archive}`);
  const resolution = definition.step * archiveDefinition.steps;
  const values = new Map<number, number | null>();
  for (const row of rows) {
    if (row.slot === (row.t / resolution) % archiveDefinition.rows) values.set(row.t, row.value);
  }
  const points: Array<[number, number | null]> = [];
  for (let t = Math.ceil(start / resolution) * resolution; t < end + resolution; t += resolution) points.push([t, values.get(t) ?? null]);
  return points;
}
