import type { Command } from 'commander';

/** One column of a table: its heading and how an item shows in it. */
export interface Column<T> {
  header: string;
  value: (item: T) => string | number | boolean | null | undefined;
}

/** Adds `--json`: the server's JSON instead of text for people, for scripts. */
export function withJsonOption(command: Command): Command {
  return command.option('--json', 'print JSON (the server’s objects) instead of a table');
}

export const wantsJson = (options: Record<string, unknown>): boolean => options.json === true;

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Rows under their headings, each column as wide as its widest cell. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].map((text) => `${text}\n`).join('');
}

const cellText = (value: string | number | boolean | null | undefined): string => (value === null || value === undefined || value === '' ? '-' : String(value).replace(/\s+/g, ' '));

/** A listing: JSON with `--json`, else a table, or `empty` when there is nothing. */
export function printList<T>(options: Record<string, unknown>, items: T[], columns: Column<T>[], empty: string): void {
  if (wantsJson(options)) return printJson(items);
  if (items.length === 0) {
    process.stdout.write(`${empty}\n`);
    return;
  }
  process.stdout.write(formatTable(columns.map((c) => c.header), items.map((item) => columns.map((c) => cellText(c.value(item))))));
}

/** One object: JSON with `--json`, else the sentence for people. */
export function printResult(options: Record<string, unknown>, value: unknown, sentence: string): void {
  if (wantsJson(options)) printJson(value);
  else process.stdout.write(`${sentence}\n`);
}

/** Lists of words given as `a,b,c` (and repeated flags) as one list. */
export const collectList = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((word) => word.trim()).filter((word) => word !== '')];
