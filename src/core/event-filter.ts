import { Type, type TObject } from 'typebox';
import type { StateDocument, StateValue } from './device-state.ts';
import type { HubEvent } from '../hub/events.ts';

/**
 * What one subscriber wants of the hub's event stream. Every list present must match; a list that is
 * absent does not restrict (lists are never empty: the schema refuses that, so no reading of "empty"
 * is needed). The filter narrows what a subscriber may already see; who may see an event at all is
 * decided before it (organization and device permissions), never here.
 */
export interface EventFilter {
  /** fleetd device ids or external ids (a Shelly `src`). */
  deviceIds?: string[];
  /** Group ids: the device belongs to at least one of them. */
  groups?: string[];
  /** The device carries at least one of them. */
  tags?: string[];
  /** Event names, `*` as a whole dot-token (`device.*`), or `*` alone for every event. */
  events?: string[];
  /** For device.notification: names of the notification (`data.event`, such as `single_push`) or its method. */
  notifications?: string[];
  /**
   * For device.status, patterns `component:field` over the changed fields, as Shelly Fleet Manager
   * writes them (`*:aenergy`, `switch:*`, `*:*`). Deny rules go first; then, when there are allow
   * rules, a field must match one of them.
   */
  status?: { allow?: string[]; deny?: string[] };
}

/** What a filter may ask of the device an event is about. */
export interface DeviceFacts {
  id: string;
  externalId: string | null;
  tags: string[];
  groupIds: string[];
}

const Id = Type.String({ minLength: 1, maxLength: 128 });
const Patterns = (pattern: string, maxItems: number) =>
  Type.Array(Type.String({ minLength: 1, maxLength: 128, pattern }), { minItems: 1, maxItems });
/** A dotted event name whose tokens may be `*`. */
const eventPattern = '^(\\*|[a-z]+)(\\.(\\*|[a-z_]+))*$';
/** One to three colon-separated parts, none empty: `component`, `component:field`, `type:id:field`. */
const statusPattern = '^[^:\\s]+(:[^:\\s]+){0,2}$';

export const EventFilterSchema: TObject = Type.Object(
  {
    deviceIds: Type.Optional(Type.Array(Id, { minItems: 1, maxItems: 1000 })),
    groups: Type.Optional(Type.Array(Id, { minItems: 1, maxItems: 100 })),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { minItems: 1, maxItems: 100 })),
    events: Type.Optional(Patterns(eventPattern, 100)),
    notifications: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { minItems: 1, maxItems: 100 })),
    status: Type.Optional(
      Type.Object({ allow: Type.Optional(Patterns(statusPattern, 100)), deny: Type.Optional(Patterns(statusPattern, 100)) }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false, description: 'Which hub events a subscriber receives' },
);

/**
 * The event as this subscriber should see it, or undefined. Status events keep only the allowed
 * fields and are dropped when nothing is left. The event given is never changed: it is shared by
 * every subscriber of the node, and handed on as it is when the filter takes nothing out of it.
 */
export function filterEvent(filter: EventFilter, event: HubEvent, device: DeviceFacts | undefined): HubEvent | undefined {
  if (filter.events && !filter.events.some((pattern) => nameMatches(pattern, event.name))) return undefined;
  if (filter.deviceIds && !deviceNames(event, device).some((name) => filter.deviceIds!.includes(name))) return undefined;
  if (filter.groups && !(device && filter.groups.some((group) => device.groupIds.includes(group)))) return undefined;
  if (filter.tags && !(device && filter.tags.some((tag) => device.tags.includes(tag)))) return undefined;
  if (event.name === 'device.notification' && filter.notifications) {
    const { event: name, method } = event.data;
    if (!filter.notifications.some((wanted) => wanted === name || wanted === method)) return undefined;
  }
  if (event.name === 'device.status' && filter.status && isDocument(event.data.changed)) {
    const changed = filterStatus(filter.status, event.data.changed);
    if (changed === undefined) return undefined;
    return changed === event.data.changed ? event : { ...event, data: { ...event.data, changed } };
  }
  return event;
}

/** The names the event's device goes by; admission events name a device only in their data. */
function deviceNames(event: HubEvent, device: DeviceFacts | undefined): string[] {
  return [event.deviceId, device?.externalId, event.data.deviceId, event.data.externalId].filter((name) => typeof name === 'string');
}

function nameMatches(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  const wanted = pattern.split('.');
  const tokens = name.split('.');
  return wanted.length === tokens.length && wanted.every((token, i) => token === '*' || token === tokens[i]);
}

interface StatusRule {
  /** The component type (`switch`), or `*`. */
  type: string;
  /** The component id (`0`); undefined for every component of the type, with or without an id. */
  id?: string;
  /** A top-level field of the component's object, or `*`. */
  field: string;
}

/**
 * Reads `switch`, `switch:0`, `switch:output`, `switch:0:output`, `*:aenergy`. Component ids are
 * numbers and field names never are, so a numeric second part is the id: `switch:0` is that
 * component, whole.
 */
function parseRule(pattern: string): StatusRule {
  const [type, second, third] = pattern.split(':') as [string, string?, string?];
  if (second === undefined) return { type, field: '*' };
  if (third !== undefined) return { type, id: second === '*' ? undefined : second, field: third };
  return /^\d+$/.test(second) ? { type, id: second, field: '*' } : { type, field: second };
}

/** Whether a rule names the component of a changed key such as `switch:0` or `ts`. */
function componentMatches(rule: StatusRule, key: string): boolean {
  const colon = key.indexOf(':');
  const type = colon < 0 ? key : key.slice(0, colon);
  const id = colon < 0 ? undefined : key.slice(colon + 1);
  return (rule.type === '*' || rule.type === type) && (rule.id === undefined || rule.id === id);
}

/**
 * An entry of the changed document that is an object (a Shelly component such as `switch:0`) is
 * filtered field by field. An entry that is not an object (`ts`, a flat `temperature` of a simple
 * device, `null` for a removed component) has no fields: it is the component's whole value, which
 * only rules whose field part is `*` (or absent) match. So `*:aenergy` leaves it alone, `ts`, `ts:*`
 * or `*:*` match it, and with allow rules it stays only when one names it that way.
 */
function filterStatus(rules: { allow?: string[]; deny?: string[] }, changed: StateDocument): StateDocument | undefined {
  const deny = (rules.deny ?? []).map(parseRule);
  const allow = rules.allow?.map(parseRule);
  const admitted = (key: string, field: string | undefined) => {
    const matches = (rule: StatusRule) => componentMatches(rule, key) && (rule.field === '*' || rule.field === field);
    return !deny.some(matches) && (!allow || allow.some(matches));
  };
  const kept: StateDocument = {};
  let removed = false;
  for (const [key, value] of Object.entries(changed)) {
    if (!isDocument(value)) {
      if (admitted(key, undefined)) kept[key] = value;
      else removed = true;
      continue;
    }
    const entries = Object.entries(value);
    const fields = entries.filter(([field]) => admitted(key, field));
    if (fields.length > 0) kept[key] = fields.length === entries.length ? value : Object.fromEntries(fields);
    removed ||= fields.length < entries.length;
  }
  if (!removed) return changed;
  return Object.keys(kept).length > 0 ? kept : undefined;
}

const isDocument = (value: StateValue | undefined): value is StateDocument => typeof value === 'object' && value !== null && !Array.isArray(value);
