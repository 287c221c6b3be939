import { mergeState, type StateDocument } from '../../core/device-state.ts';
import type { Logger } from '../../log.ts';
import type { Params } from '../jsonrpc/messages.ts';
import { parseComponentKey } from './components.ts';
import { isDocument } from './frames.ts';

export type DeviceCall = (method: string, params: Params | undefined, timeoutMs: number) => Promise<unknown>;

export interface Hydration {
  /** Shelly.GetDeviceInfo, when it answered. */
  info?: StateDocument;
  /** The device's status: the seed, then GetStatus, then each dynamic component's. */
  status: StateDocument;
  /** Shelly.GetConfig plus each dynamic component's, when GetConfig answered. */
  config?: StateDocument;
}

/** Fleet Manager HEAD's cap: a device announcing more pages than this is not believed. */
const maxComponentPages = 100;

/**
 * Reads a newly admitted device (shelly-gen2.md §6, HEAD behaviour): its info, status, config and
 * method list at once, then its dynamic components page by page when it has Shelly.GetComponents.
 * Each call may take `timeoutMs`; whatever fails is logged and left out, never fatal: the device
 * stays connected with what it gave. `onStatus` runs when GetStatus answered, so the caller can
 * tell status notifications that are older than it from newer ones.
 */
export async function hydrate(call: DeviceCall, seed: StateDocument, options: { timeoutMs: number; logger: Logger; onStatus: () => void }): Promise<Hydration> {
  const { timeoutMs, logger } = options;
  const attempt = async (method: string, params?: Params): Promise<StateDocument | undefined> => {
    try {
      const result = await call(method, params, timeoutMs);
      if (isDocument(result)) return result;
      logger.warn({ method }, 'hydration: the device answered with something that is not an object');
    } catch (error) {
      // Older firmware has no ListMethods: that is expected, not worth a warning.
      logger[method === 'Shelly.ListMethods' ? 'debug' : 'warn']({ err: error, method }, 'hydration call failed');
    }
    return undefined;
  };
  const [info, status, config, methods] = await Promise.all([
    attempt('Shelly.GetDeviceInfo'),
    attempt('Shelly.GetStatus').then((result) => {
      if (result) options.onStatus();
      return result;
    }),
    attempt('Shelly.GetConfig'),
    attempt('Shelly.ListMethods'),
  ]);
  let merged = status ? mergeState(seed, status) : seed;
  let mergedConfig = config;
  if (hasGetComponents(methods)) {
    for (const component of await dynamicComponents(attempt)) {
      if (component.status) merged = mergeState(merged, { [component.key]: component.status });
      if (component.config && mergedConfig) mergedConfig = mergeState(mergedConfig, { [component.key]: component.config });
    }
  }
  return { ...(info && { info }), status: merged, ...(mergedConfig && { config: mergedConfig }) };
}

function hasGetComponents(methods: StateDocument | undefined): boolean {
  const list = methods?.methods;
  return Array.isArray(list) && list.some((method) => typeof method === 'string' && method.toLowerCase() === 'shelly.getcomponents');
}

interface Component {
  key: string;
  status?: StateDocument;
  config?: StateDocument;
}

/** Pages of Shelly.GetComponents until `total` is reached, a page is empty or unreadable, or the cap. */
async function dynamicComponents(attempt: (method: string, params?: Params) => Promise<StateDocument | undefined>): Promise<Component[]> {
  const components: Component[] = [];
  let offset = 0;
  for (let page = 0; page < maxComponentPages; page++) {
    const result = await attempt('Shelly.GetComponents', { offset, dynamic_only: true });
    const items = result?.components;
    if (!Array.isArray(items) || items.length === 0) break;
    for (const item of items) {
      const key = isDocument(item) ? parseComponentKey(item.key) : undefined;
      if (!key || !isDocument(item)) continue;
      components.push({ key: key.key, ...(isDocument(item.status) && { status: item.status }), ...(isDocument(item.config) && { config: item.config }) });
    }
    offset += items.length;
    if (typeof result!.total !== 'number' || offset >= result!.total) break;
  }
  return components;
}
