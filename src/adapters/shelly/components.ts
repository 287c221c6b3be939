/**
 * Shelly component keys (§3 of shelly-gen2.md): `<type>` for singletons (`sys`, `wifi`) and
 * `<type>:<id>` for instances (`switch:0`, `boolean:200`). The RPC namespace is the type, which
 * devices match case-insensitively: `switch:0` → `Switch.GetConfig {"id":0}`.
 */

/** Types are lowercase letters and digits; anything else (`__proto__`, paths, spaces) is no key of a device. */
const keyPattern = /^([a-z][a-z0-9]{0,63})(?::(\d{1,9}))?$/;

export interface ComponentKey {
  key: string;
  type: string;
  id?: number;
}

export function parseComponentKey(key: unknown): ComponentKey | undefined {
  if (typeof key !== 'string') return undefined;
  const match = keyPattern.exec(key);
  if (!match) return undefined;
  return match[2] === undefined ? { key, type: match[1]! } : { key, type: match[1]!, id: Number(match[2]) };
}

/** `Switch.GetConfig` and its params for one component. */
export function componentCall(component: ComponentKey, operation: 'GetConfig' | 'GetStatus'): { method: string; params?: { id: number } } {
  const method = `${component.type[0]!.toUpperCase()}${component.type.slice(1)}.${operation}`;
  return component.id === undefined ? { method } : { method, params: { id: component.id } };
}
