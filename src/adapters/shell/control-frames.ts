import { badRequest } from '../../core/errors.ts';

/**
 * The text frames of a shell: JSON control messages beside the terminal bytes (binary frames).
 * The operator sends `{"type":"resize","cols","rows"}`, the device `{"type":"exit","code"}`. Each is
 * passed on rebuilt from its checked fields, so that nothing else a peer put in reaches the other.
 */
export type ResizeFrame = { type: 'resize'; cols: number; rows: number };
export type ExitFrame = { type: 'exit'; code: number };

/** Larger than any terminal, small enough for every PTY's 16-bit window size. */
const maxTerminalCells = 10_000;

const isDimension = (value: unknown): value is number => Number.isInteger(value) && (value as number) >= 1 && (value as number) <= maxTerminalCells;

function parseObject(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw badRequest('control frame is not JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw badRequest('control frame is not a JSON object');
  return parsed as Record<string, unknown>;
}

/** An operator's control frame; a FleetError (bad_request) names what is wrong with any other text. */
export function readOperatorControl(text: string): ResizeFrame {
  const frame = parseObject(text);
  if (frame.type !== 'resize') throw badRequest('unknown control frame type');
  if (!isDimension(frame.cols) || !isDimension(frame.rows)) throw badRequest(`resize needs integer cols and rows from 1 to ${maxTerminalCells}`);
  return { type: 'resize', cols: frame.cols, rows: frame.rows };
}

/** A device's control frame; a FleetError (bad_request) names what is wrong with any other text. */
export function readDeviceControl(text: string): ExitFrame {
  const frame = parseObject(text);
  if (frame.type !== 'exit') throw badRequest('unknown control frame type');
  if (!Number.isInteger(frame.code) || (frame.code as number) < -2_147_483_648 || (frame.code as number) > 2_147_483_647) throw badRequest('exit needs an integer code');
  return { type: 'exit', code: frame.code as number };
}
