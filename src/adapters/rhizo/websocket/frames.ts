import type { FleetError } from '../../../core/errors.ts';
import { closeCodes } from '../../../hub/socket.ts';

/** A frame from a rhizo client: `{"type", "parameters", "folder"?}` (the client appends a newline). */
export interface ClientFrame {
  type: string;
  /** Whatever the client sent: each handler checks what it needs. */
  parameters: unknown;
  /** A folder path or id, for routed messages. */
  folder: unknown;
}

/** What a text frame is: a client frame, JSON that is no client frame, or no JSON at all. */
export type ParsedFrame = { frame: ClientFrame } | { problem: string } | { unparseable: true };

export function parseFrame(text: string): ParsedFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { unparseable: true };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { problem: 'expected a JSON object with type and parameters' };
  const { type, parameters, folder } = value as Record<string, unknown>;
  if (typeof type !== 'string' || type === '') return { problem: 'expected a message type' };
  return { frame: { type, parameters, folder } };
}

/** rhizo closes a connection that sends something other than JSON; the code and reason say why. */
export const unparseableClose = { code: closeCodes.invalidData, reason: 'frame is not valid JSON' } as const;

/** A server frame: `{"type", "timestamp": "<ISO>Z", "parameters"}`. */
export function serverFrame(type: string, parameters: object, timestamp: string = new Date().toISOString()): string {
  return JSON.stringify({ type, timestamp, parameters });
}

export const errorFrame = (message: string): string => serverFrame('error', { message });

/** The parameters as an object, or undefined when they are something else. */
export function parametersObject(parameters: unknown): Record<string, unknown> | undefined {
  return parameters !== null && typeof parameters === 'object' && !Array.isArray(parameters) ? (parameters as Record<string, unknown>) : undefined;
}

/** The first of several accepted spellings of a parameter (rhizo takes snake_case and camelCase). */
export function param(parameters: Record<string, unknown> | undefined, ...names: string[]): unknown {
  for (const name of names) if (parameters?.[name] !== undefined) return parameters[name];
  return undefined;
}

/** rhizo's error texts for a resource a message names: `resource not found: <path>`, `permission error: <path>`. */
export function resourceErrorText(error: FleetError, path: string): string {
  if (error.code === 'not_found') return `resource not found: ${path}`;
  if (error.code === 'forbidden') return `permission error: ${path}`;
  return error.message;
}
