import { badRequest } from '../../core/errors.ts';
import type { DeviceLink } from '../../hub/device-links.ts';
import type { Hub } from '../../hub/hub.ts';
import { closeCodes, type FleetSocket } from '../../hub/socket.ts';
import type { DeviceAccess, PageAccess } from './access.ts';
import type { RelayChannels } from './channels.ts';
import type { Frame } from './frames.ts';
import { handleDeviceFrame } from './handle-device-frame.ts';
import { handlePageFrame } from './handle-page-frame.ts';

/**
 * A device's relay connection. DeviceLinks gives it presence in the registry, online/offline events,
 * and the replacement of an older connection here or on another node (which it closes with 4000).
 */
export function serveDevice(hub: Hub, channels: RelayChannels, socket: FleetSocket, access: DeviceAccess): void {
  const channel = channels.attachDevice(access.channel, access.device, socket);
  const onFrame = (frame: Frame) => handleDeviceFrame(hub, channels, channel, frame);
  socket.onText(onFrame);
  socket.onBinary(onFrame);
  const link: DeviceLink = {
    call: () => Promise.reject(badRequest('A relay device takes no JSON-RPC calls: pages send it frames on its channel')),
    close: (code, reason) => socket.close(code, reason),
  };
  const attached = hub.links.attach(access.device, link);
  attached.catch((error: unknown) => {
    hub.logger.error({ err: error, channel: access.channel }, 'a relay device could not be linked');
    socket.close(closeCodes.internal, 'internal error');
  });
  socket.onClose(() => {
    channels.detachDevice(channel, socket);
    attached
      .then(
        (detach) => detach(),
        () => {},
      )
      .catch((error: unknown) => hub.logger.warn({ err: error, channel: access.channel }, 'a relay device could not be marked offline'));
  });
}

/** A page watching a channel: it hears the device's presence and frames, and sends if its role allows. */
export function servePage(hub: Hub, channels: RelayChannels, socket: FleetSocket, access: PageAccess): void {
  const channel = channels.join(access.channel, access.device, socket);
  const page = { socket, canSend: access.canSend };
  const onFrame = (frame: Frame) => handlePageFrame(hub, channels, channel, page, frame);
  socket.onText(onFrame);
  socket.onBinary(onFrame);
  socket.onClose(() => channels.leave(channel, socket));
}
