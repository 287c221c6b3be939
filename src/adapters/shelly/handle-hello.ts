import type { StateDocument } from '../../core/device-state.ts';
import type { JsonValue } from '../../hub/bus.ts';
import { shellyCloseCodes, shellyCloseReasons } from './close-codes.ts';
import { externalIdPattern, isDocument, readFrame } from './frames.ts';

export type Hello =
  | { ok: true; externalId: string; method: 'NotifyFullStatus' | 'NotifyStatus'; params: StateDocument }
  | { ok: false; code: number; reason: string; detail: string };

/**
 * The first text frame of a device names it: a NotifyFullStatus (ESP32 devices) or NotifyStatus
 * (the Wall Display) notification whose `src` is the device id, and whose params are its status.
 */
export function readHello(text: string): Hello {
  const frame = readFrame(text);
  if (frame.kind === 'unreadable') {
    return frame.notJson
      ? { ok: false, code: shellyCloseCodes.helloNotJson, reason: shellyCloseReasons.helloNotJson, detail: frame.reason }
      : bad(frame.reason);
  }
  const { message, src } = frame;
  if (message.kind !== 'notification') return bad(`a ${message.kind.replace('_', ' ')}`);
  if (message.method !== 'NotifyFullStatus' && message.method !== 'NotifyStatus') return bad(`method ${message.method}`);
  if (src === undefined || !externalIdPattern.test(src)) return bad('no usable src');
  const params = message.params ?? {};
  if (!isDocument(params)) return bad('params is not an object');
  return { ok: true, externalId: src, method: message.method, params };
}

const bad = (detail: string): Hello => ({ ok: false, code: shellyCloseCodes.badHello, reason: shellyCloseReasons.badHello, detail });

/**
 * What admins see of the hello while the device waits. A Pro device's full status can be larger than
 * admission keeps of a device's own words: then only what tells devices apart (sys: mac, uptime;
 * the network; the list of components) is passed on.
 */
export function helloSummary(params: StateDocument): JsonValue {
  if (JSON.stringify(params).length <= maxHelloChars) return params;
  const { sys, wifi, eth } = params;
  const summary: StateDocument = { components: Object.keys(params).filter((key) => key !== 'ts') };
  for (const [key, value] of Object.entries({ sys, wifi, eth })) if (value !== undefined) summary[key] = value;
  return JSON.stringify(summary).length <= maxHelloChars ? summary : { components: (summary.components as string[]).slice(0, 100) };
}

const maxHelloChars = 8 * 1024;
