import type { StateDocument } from '../../core/device-state.ts';
import { FleetError } from '../../core/errors.ts';
import type { JsonValue } from '../../hub/bus.ts';
import { componentCall, parseComponentKey, type ComponentKey } from './components.ts';
import { publish, type ConnectedDevice } from './context.ts';
import { isDocument } from './frames.ts';
import { storeShellyInfo } from './store-shelly-info.ts';

/** A device sends a few events per frame; a frame claiming more is cut here rather than storing thousands of events. */
const maxEventsPerFrame = 100;

/** Work that calls the device again; it runs after the frame is handled, one task at a time. */
export type Schedule = (task: () => Promise<void>) => void;

/**
 * NotifyEvent (shelly-gen2.md §5): one device.notification per entry, then what the entry asks of
 * the server: a changed configuration is read again (and the device info with `sys`), an added
 * component is read, a removed one forgotten. Unknown events are passed on as they are.
 */
export async function handleNotifyEvent(connected: ConnectedDevice, params: StateDocument, schedule: Schedule): Promise<void> {
  const events = params.events;
  if (!Array.isArray(events)) {
    connected.logger.debug('NotifyEvent without an events list ignored');
    return;
  }
  if (events.length > maxEventsPerFrame) connected.logger.warn({ events: events.length, kept: maxEventsPerFrame }, 'NotifyEvent with too many events cut');
  for (const entry of events.slice(0, maxEventsPerFrame)) {
    if (!isDocument(entry) || typeof entry.event !== 'string') continue;
    await publish(connected, 'device.notification', { ...(entry as { [key: string]: JsonValue }), method: 'NotifyEvent' });
    const followUp = followUpOf(connected, entry);
    if (followUp) schedule(followUp);
  }
}

function followUpOf(connected: ConnectedDevice, entry: StateDocument): (() => Promise<void>) | undefined {
  switch (entry.event) {
    case 'config_changed': {
      const component = parseComponentKey(entry.component);
      return component && (() => refetchConfig(connected, component));
    }
    case 'component_added': {
      const target = parseComponentKey(entry.target);
      return target && (() => addComponent(connected, target));
    }
    case 'component_removed': {
      const target = parseComponentKey(entry.target);
      return target && (() => removeComponent(connected, target));
    }
    default:
      return undefined;
  }
}

async function read(connected: ConnectedDevice, component: ComponentKey, operation: 'GetConfig' | 'GetStatus'): Promise<StateDocument> {
  const { method, params } = componentCall(component, operation);
  const result = await connected.call(method, params, connected.refreshTimeoutMs);
  if (!isDocument(result)) throw notAnObject(method);
  return result;
}

async function refetchConfig(connected: ConnectedDevice, component: ComponentKey): Promise<void> {
  const config = await read(connected, component, 'GetConfig');
  await storeShellyInfo(connected.hub.services.store, connected.device.id, { components: { [component.key]: config } });
  // The device's name and profile live in sys: its info may have changed with it.
  if (component.type === 'sys') await refetchInfo(connected);
}

async function refetchInfo(connected: ConnectedDevice): Promise<void> {
  const info = await connected.call('Shelly.GetDeviceInfo', undefined, connected.refreshTimeoutMs);
  if (!isDocument(info)) throw notAnObject('Shelly.GetDeviceInfo');
  await storeShellyInfo(connected.hub.services.store, connected.device.id, { info });
  await publish(connected, 'device.info', { info: info as JsonValue });
}

async function addComponent(connected: ConnectedDevice, component: ComponentKey): Promise<void> {
  const [status, config] = await Promise.all([read(connected, component, 'GetStatus'), read(connected, component, 'GetConfig')]);
  await connected.report({ [component.key]: status });
  await storeShellyInfo(connected.hub.services.store, connected.device.id, { components: { [component.key]: config } });
}

async function removeComponent(connected: ConnectedDevice, component: ComponentKey): Promise<void> {
  await connected.report({ [component.key]: null });
  await storeShellyInfo(connected.hub.services.store, connected.device.id, { components: { [component.key]: null } });
}

const notAnObject = (method: string) => new FleetError('device_error', `The device answered ${method} with something that is not an object`, { details: { method } });
