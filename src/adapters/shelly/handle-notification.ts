import type { JsonValue } from '../../hub/bus.ts';
import type { Params } from '../jsonrpc/messages.ts';
import { publish, type ConnectedDevice } from './context.ts';

/** Any other notification of the device (NotifyStatus and NotifyEvent aside) reaches watchers as it came. */
export async function handleNotification(connected: ConnectedDevice, method: string, params: Params | undefined): Promise<void> {
  await publish(connected, 'device.notification', { method, params: (params ?? null) as JsonValue });
}
