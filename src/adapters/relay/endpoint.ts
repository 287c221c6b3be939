import type { Hub } from '../../hub/hub.ts';
import type { WebSocketEndpoint } from '../../http/websocket.ts';
import { channelName, deviceAccess, pageAccess, principalOf, type RelayAccess } from './access.ts';
import { relayChannels } from './channels.ts';
import { serveDevice, servePage } from './serve.ts';

const prefix = '/api/relay/';

/**
 * `/api/relay/<channel>`: the device whose external id the channel is, and the pages watching it.
 * Both sides authenticate (device key; user or user key with device.read, device.control to send).
 */
export function relayEndpoint(hub: Hub): WebSocketEndpoint<RelayAccess> {
  const channels = relayChannels(hub);
  return {
    name: 'relay',
    kind: (access) => (access.role === 'device' ? 'device' : 'client'),
    match: (pathname) => pathname.startsWith(prefix),
    async authenticate(request) {
      const channel = channelName(request.url.pathname.slice(prefix.length));
      const principal = await principalOf(hub, request);
      return principal.kind === 'device' ? deviceAccess(hub, principal, channel, request) : pageAccess(hub, principal, channel);
    },
    accept(socket, _request, access) {
      if (access.role === 'device') serveDevice(hub, channels, socket, access);
      else servePage(hub, channels, socket, access);
    },
  };
}
