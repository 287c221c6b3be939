import type { StateDocument } from '../../core/device-state.ts';
import { errorResponse, protocolErrors, type RequestObject, type JsonRpcId } from '../jsonrpc/messages.ts';
import { parseFrame, type Message } from '../jsonrpc/parse.ts';

/**
 * Shelly's framing over the JSON-RPC core: every frame fleetd sends names it as `src`, answers go
 * back to the asker's `src` as `dst`, and devices leave out `"jsonrpc": "2.0"`.
 */

/** What fleetd calls itself in `src`; devices answer to it in `dst`. */
export const fleetdSrc = 'fleetd';

/** A device id as Shelly spells it (`shellyplus1pm-a8032abb995c`), and what fleetd devices may call themselves. */
export const externalIdPattern = /^[A-Za-z0-9._:@-]{1,128}$/;

/** Far deeper than any Shelly frame (status objects nest 3–4 levels); deeper ones would exhaust the stack of every recursive merge. */
const maxDepth = 32;

export const requestFrame = (request: RequestObject): string => JSON.stringify({ ...request, src: fleetdSrc });

/** A request of the device's fleetd does not serve: devices call nothing on the server. */
export const methodNotFoundFrame = (id: JsonRpcId, dst: string | undefined): string =>
  JSON.stringify({ ...errorResponse(id, protocolErrors.methodNotFound), src: fleetdSrc, ...(dst !== undefined && { dst }) });

export type ShellyFrame =
  | { kind: 'message'; message: Message; src: string | undefined }
  /** Nothing fleetd reads: `reason` says why, for the debug log. */
  | { kind: 'unreadable'; reason: string; notJson?: true };

/** One text frame of a device. Shelly sends one object per frame: arrays (batches) are unreadable. */
export function readFrame(text: string): ShellyFrame {
  // A batch limit of 0 refuses any array before its elements are looked at.
  const frame = parseFrame(text, { maxBatchSize: 0, requireVersion: false });
  if (frame.kind === 'refused') return frame.reason === 'not valid JSON' ? { kind: 'unreadable', reason: frame.reason, notJson: true } : { kind: 'unreadable', reason: 'an array' };
  if (frame.kind === 'batch') return { kind: 'unreadable', reason: 'an array' };
  const { message } = frame;
  if (message.kind === 'invalid') return { kind: 'unreadable', reason: message.reason };
  const problem = 'members' in message ? shapeProblem(message.members) : undefined;
  if (problem) return { kind: 'unreadable', reason: problem };
  const src = 'members' in message ? message.members.src : undefined;
  if (src !== undefined && typeof src !== 'string') return { kind: 'unreadable', reason: 'src is not a string' };
  return { kind: 'message', message, src };
}

export const isDocument = (value: unknown): value is StateDocument => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The status components of NotifyStatus/NotifyFullStatus params: everything but the timestamp. */
export function statusOf(params: StateDocument): StateDocument {
  const { ts: _ts, ...status } = params;
  return status;
}

/**
 * Why a frame cannot be merged into stored documents: nested beyond `maxDepth`, or a member named
 * `__proto__`, which an assignment would take for the object's prototype. Walked without recursion.
 */
function shapeProblem(value: unknown): string | undefined {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    if (depth > maxDepth) return `nested deeper than ${maxDepth} levels`;
    if (Array.isArray(current)) {
      for (const item of current) stack.push({ value: item, depth: depth + 1 });
      continue;
    }
    if (Object.hasOwn(current, '__proto__')) return 'a member named __proto__';
    for (const item of Object.values(current)) stack.push({ value: item, depth: depth + 1 });
  }
  return undefined;
}
