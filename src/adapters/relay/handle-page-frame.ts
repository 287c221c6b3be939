import type { Hub } from '../../hub/hub.ts';
import type { FleetSocket } from '../../hub/socket.ts';
import type { RelayChannel, RelayChannels } from './channels.ts';
import { relayReplies, type Frame } from './frames.ts';

/**
 * A page's frame goes, unchanged, to the channel's device wherever it is connected. The page is told
 * when it may not send, or when the device is not there to take it (Paikea dropped such frames silently).
 */
export async function handlePageFrame(hub: Hub, channels: RelayChannels, channel: RelayChannel, page: { socket: FleetSocket; canSend: boolean }, frame: Frame): Promise<void> {
  if (!page.canSend) {
    page.socket.send(relayReplies.notAllowed);
    return;
  }
  const outcome = await channels.toDevice(channel, frame);
  if (outcome === 'sent') hub.messageLog.write({ endpoint: 'relay', direction: 'in', channel: channel.name, text: frame });
  else page.socket.send(outcome === 'offline' ? relayReplies.deviceOffline : relayReplies.tooLarge);
}
