import type { Hub } from '../../hub/hub.ts';
import type { RelayChannel, RelayChannels } from './channels.ts';
import type { Frame } from './frames.ts';

/** A device's frame goes, unchanged, to every page watching its channel; the log gets it once, here. */
export function handleDeviceFrame(hub: Hub, channels: RelayChannels, channel: RelayChannel, frame: Frame): void {
  hub.messageLog.write({ endpoint: 'relay', direction: 'out', channel: channel.name, text: frame });
  channels.toPages(channel, frame);
}
