import { type MessageHandler } from './context.ts';

/**
 * `ping` (rhizo clients send one every 45 s): it only keeps proxies from closing an idle connection,
 * so nothing is answered. The socket's own WebSocket pings detect dead peers.
 */
export const handlePing: MessageHandler = () => {};
