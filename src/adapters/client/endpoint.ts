import type { Principal } from '../../core/access.ts';
import type { UpgradeRequest, WebSocketEndpoint } from '../../http/websocket.ts';
import { recheckCredentials } from '../../hub/credential-recheck.ts';
import type { Hub } from '../../hub/hub.ts';
import { closeCodes, type FleetSocket } from '../../hub/socket.ts';
import type { Credentials } from '../../services/authenticator.ts';
import type { Dispatcher } from '../jsonrpc/dispatcher.ts';
import { clientDispatcher, clientPrincipal, type ClientContext } from './dispatcher.ts';
import { EventSubscriptions } from './subscriptions.ts';

interface ClientAuth {
  principal: Principal;
  credentials: Credentials;
}

/**
 * Frames of one connection handled at once. Calls to devices take a while, so several run side by
 * side (their replies go out as each finishes, matched by id); beyond this, reading waits for one.
 */
const maxInFlight = 16;

/** JSON-RPC 2.0 for people and programs at /api/ws: device methods and event subscriptions. */
export function clientEndpoint(hub: Hub): WebSocketEndpoint<ClientAuth> {
  const dispatcher = clientDispatcher(hub);
  return {
    name: 'clients',
    kind: 'client',
    match: (pathname) => pathname === '/api/ws' || pathname === '/api/ws/',
    authenticate: async (request) => ({ principal: clientPrincipal(await hub.services.authenticator.authenticate(request.credentials)), credentials: request.credentials }),
    accept: (socket, request, auth) => serve(hub, dispatcher, socket, request, auth),
  };
}

function serve(hub: Hub, dispatcher: Dispatcher<ClientContext>, socket: FleetSocket, request: UpgradeRequest, auth: ClientAuth): void {
  const logger = hub.logger.child({ component: 'clients', socket: socket.id });
  let principal = auth.principal;
  const subscriptions = new EventSubscriptions(hub, {
    send: (text) => socket.send(text),
    close: (code, reason) => socket.close(code, reason),
    principal: () => principal,
    logger,
  });

  const handle = async (text: string): Promise<void> => {
    const afterReply: Array<() => void> = [];
    const reply = await dispatcher.handleText(text, { principal, ip: request.remoteAddress, requestId: socket.id, subscriptions, afterReply });
    if (reply !== undefined) socket.send(reply);
    for (const action of afterReply) action();
  };
  const inFlight = new Set<Promise<void>>();
  socket.onText((text) => {
    const work = handle(text)
      .catch((error: unknown) => {
        logger.error({ err: error }, 'client frame failed');
        socket.close(closeCodes.internal, 'internal error');
      })
      .finally(() => inFlight.delete(work));
    inFlight.add(work);
    if (inFlight.size >= maxInFlight) return Promise.race(inFlight);
  });

  recheckCredentials(hub, socket, auth.credentials, logger, (current) => {
    principal = clientPrincipal(current);
  });

  socket.onClose(() => {
    subscriptions.close();
  });
}
