import { badRequest } from './errors.ts';

/**
 * Round-robin archive definitions as rrdtool writes them (`--step 60`, `DS:temp:GAUGE:120:-50:110`,
 * `RRA:AVERAGE:0.5:5:288`). fleetd keeps one data source per sequence: a definition with several
 * data sources (an rrduino profile) becomes one definition per data source, sharing the archives.
 */

export const consolidationFunctions = ['AVERAGE', 'MIN', 'MAX', 'LAST'] as const;
export type ConsolidationFunction = (typeof consolidationFunctions)[number];
export const dataSourceTypes = ['GAUGE', 'COUNTER', 'DERIVE', 'ABSOLUTE'] as const;
export type DataSourceType = (typeof dataSourceTypes)[number];

export interface DataSourceDefinition {
  name: string;
  type: DataSourceType;
  /** Seconds without an update after which the value is unknown. */
  heartbeat: number;
  /** Values outside [min, max] are unknown; null for no bound. */
  min: number | null;
  max: number | null;
}

export interface ArchiveDefinition {
  cf: ConsolidationFunction;
  /** Fraction of unknown primary points a consolidated point may have and still be known. */
  xff: number;
  /** Primary points (steps) per row. */
  steps: number;
  rows: number;
}

/** The round-robin archives of one sequence. */
export interface RrdDefinition {
  /** Seconds per primary data point. */
  step: number;
  source: DataSourceDefinition;
  archives: ArchiveDefinition[];
}

/** What `rrdtool create` arguments define: possibly several data sources. */
export interface ParsedRrdArguments {
  step: number;
  sources: DataSourceDefinition[];
  archives: ArchiveDefinition[];
}

const defaultStep = 300;
const maxRows = 1_000_000;
const maxArchives = 20;
const namePattern = /^[a-zA-Z0-9_]{1,19}$/;

function number(text: string, what: string, { integer = false, min = -Infinity } = {}): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min) {
    throw badRequest(`${what} must be ${integer ? 'a whole number' : 'a number'}${min > -Infinity ? ` of at least ${min}` : ''}, not ${JSON.stringify(text)}`);
  }
  return value;
}

const bound = (text: string, what: string) => (text === 'U' ? null : number(text, what));

function parseDataSource(text: string): DataSourceDefinition {
  const parts = text.split(':');
  if (parts.length !== 6) throw badRequest(`${JSON.stringify(text)} is not DS:name:type:heartbeat:min:max`);
  const [, name, type, heartbeat, min, max] = parts as [string, string, string, string, string, string];
  if (!namePattern.test(name)) throw badRequest(`Data source name ${JSON.stringify(name)} must be 1 to 19 letters, digits or _`);
  if (!(dataSourceTypes as readonly string[]).includes(type)) throw badRequest(`Data source type ${JSON.stringify(type)} is not one of ${dataSourceTypes.join(', ')}`);
  const source = {
    name,
    type: type as DataSourceType,
    heartbeat: number(heartbeat, `Heartbeat of ${name}`, { integer: true, min: 1 }),
    min: bound(min, `Minimum of ${name}`),
    max: bound(max, `Maximum of ${name}`),
  };
  if (source.min !== null && source.max !== null && source.min >= source.max) throw badRequest(`Minimum of ${name} must be below its maximum`);
  return source;
}

function parseArchive(text: string): ArchiveDefinition {
  const parts = text.split(':');
  if (parts.length !== 5) throw badRequest(`${JSON.stringify(text)} is not RRA:CF:xff:steps:rows`);
  const [, cf, xff, steps, rows] = parts as [string, string, string, string, string];
  if (!(consolidationFunctions as readonly string[]).includes(cf)) throw badRequest(`Consolidation function ${JSON.stringify(cf)} is not one of ${consolidationFunctions.join(', ')}`);
  const archive = {
    cf: cf as ConsolidationFunction,
    xff: number(xff, 'xfiles factor', { min: 0 }),
    steps: number(steps, 'Steps per row', { integer: true, min: 1 }),
    rows: number(rows, 'Row count', { integer: true, min: 1 }),
  };
  if (archive.xff >= 1) throw badRequest('The xfiles factor must be below 1');
  if (archive.rows > maxRows) throw badRequest(`An archive has at most ${maxRows} rows`);
  return archive;
}

/**
 * Parses `rrdtool create` arguments after the file name: `--step N` (or `-s N`, `--step=N`), `DS:` and
 * `RRA:` strings, exactly as rrdtool takes them. Other options (`--start`, `--no-overwrite`) are
 * accepted and ignored, since fleetd decides when an archive starts.
 */
export function parseRrdArguments(args: readonly string[]): ParsedRrdArguments {
  let step = defaultStep;
  const sources: DataSourceDefinition[] = [];
  const archives: ArchiveDefinition[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--step' || arg === '-s') step = number(args[++i] ?? '', 'The step', { integer: true, min: 1 });
    else if (arg.startsWith('--step=')) step = number(arg.slice('--step='.length), 'The step', { integer: true, min: 1 });
    else if (arg === '--start' || arg === '-b') i++;
    else if (arg.startsWith('--start=') || arg === '--no-overwrite' || arg === '-O') continue;
    else if (arg.startsWith('DS:')) sources.push(parseDataSource(arg));
    else if (arg.startsWith('RRA:')) archives.push(parseArchive(arg));
    else throw badRequest(`Unknown rrdtool create argument ${JSON.stringify(arg)}`);
  }
  if (new Set(sources.map((s) => s.name)).size !== sources.length) throw badRequest('Data source names must differ');
  if (archives.length > maxArchives) throw badRequest(`At most ${maxArchives} archives`);
  return { step, sources, archives };
}

/** The definition of one data source of parsed arguments; they need at least one archive. */
export function definitionFor(parsed: ParsedRrdArguments, source: DataSourceDefinition): RrdDefinition {
  if (parsed.archives.length === 0) throw badRequest('An archive definition needs at least one RRA');
  return { step: parsed.step, source, archives: parsed.archives };
}

/**
 * What a numeric sequence gets when nobody says otherwise: a minute step with gauge values, kept at
 * full resolution for two days, at 5 minutes for two weeks, at an hour for two months and at a day
 * for ten years, each as average, minimum and maximum.
 */
export const defaultRrdArguments: readonly string[] = [
  '--step', '60',
  'DS:value:GAUGE:600:U:U',
  'RRA:AVERAGE:0.5:1:2880',
  'RRA:AVERAGE:0.5:5:4032', 'RRA:MIN:0.5:5:4032', 'RRA:MAX:0.5:5:4032',
  'RRA:AVERAGE:0.5:60:1488', 'RRA:MIN:0.5:60:1488', 'RRA:MAX:0.5:60:1488',
  'RRA:AVERAGE:0.5:1440:3660', 'RRA:MIN:0.5:1440:3660', 'RRA:MAX:0.5:1440:3660',
];

/** The archives of a sequence from the arguments given (or the defaults): their first data source, or a gauge when they name none. */
export function rrdDefinition(args: readonly string[] = defaultRrdArguments): RrdDefinition {
  const parsed = parseRrdArguments(args);
  const source = parsed.sources[0] ?? { name: 'value', type: 'GAUGE' as const, heartbeat: parsed.step * 10, min: null, max: null };
  return definitionFor(parsed, source);
}
