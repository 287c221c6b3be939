import type { Principal } from '../../../core/access.ts';
import { FleetError, unauthenticated } from '../../../core/errors.ts';
import type { UpgradeRequest, WebSocketEndpoint } from '../../../http/websocket.ts';
import { recheckCredentials } from '../../../hub/credential-recheck.ts';
import type { Hub } from '../../../hub/hub.ts';
import { closeCodes, type FleetSocket } from '../../../hub/socket.ts';
import type { Credentials } from '../../../services/authenticator.ts';
import { senderOf, type FolderMessage } from '../../../services/folder-messages.ts';
import { changeSystemAttributes } from '../../../services/system-attributes.ts';
import { nowIso } from '../../../store/page.ts';
import type { MessageHandler, RhizoConnection } from './context.ts';
import { errorFrame, parseFrame, serverFrame, unparseableClose } from './frames.ts';
import { handlePing } from './handle-ping.ts';
import { handleSendEmail } from './handle-send-email.ts';
import { handleSendTextMessage } from './handle-send-text-message.ts';
import { handleSubscribe } from './handle-subscribe.ts';
import { handleUpdateSequence } from './handle-update-sequence.ts';
import { handleWatchdog } from './handle-watchdog.ts';
import { handleWriteResource } from './handle-write-resource.ts';
import { routeMessage } from './route-message.ts';
import { FolderSubscriptions } from './subscriptions.ts';

interface RhizoAuth {
  principal: Principal;
  credentials: Credentials;
  /** The Basic user name: rhizo clients send their version there. */
  clientVersion: string | undefined;
}

const paths = new Set(['/api/v1/websocket', '/api/v1/connectWebSocket']);

const longestClientVersion = 100;

/** `connect` (legacy greeting) and `debug_messaging` (the server's log level is not a client's to change) are taken and ignored. */
const ignore: MessageHandler = () => {};

/** The types the server handles itself, with rhizo's aliases; every other type is routed to the folder's subscribers. */
const handlers = new Map<string, MessageHandler>([
  ['subscribe', handleSubscribe],
  ['update_sequence', handleUpdateSequence],
  ['updateSequence', handleUpdateSequence],
  ['setNode', handleUpdateSequence],
  ['write_resource', handleWriteResource],
  ['watchdog', handleWatchdog],
  ['ping', handlePing],
  ['send_email', handleSendEmail],
  ['sendEmail', handleSendEmail],
  ['send_text_message', handleSendTextMessage],
  ['sendTextMessage', handleSendTextMessage],
  ['connect', ignore],
  ['debug_messaging', ignore],
]);

/**
 * rhizo's message WebSocket (`/api/v1/websocket`, legacy `/api/v1/connectWebSocket`): HTTP Basic with
 * an API key as the password (a bearer token works too). A device key makes the connection rhizo's
 * controller, whose folder is the device's. A missing or invalid key is refused at the upgrade (401),
 * so the socket never opens. Session cookies are not taken, as on every fleetd WebSocket: a page of
 * any site could use them.
 */
export function rhizoWebSocketEndpoint(hub: Hub): WebSocketEndpoint<RhizoAuth> {
  return {
    name: 'rhizo',
    kind: (auth) => (auth.principal.kind === 'device' ? 'device' : 'client'),
    match: (pathname) => paths.has(pathname),
    async authenticate(request) {
      const principal = await hub.services.authenticator.authenticate(request.credentials);
      if (!principal) throw unauthenticated('The rhizo WebSocket needs an API key: HTTP Basic with the key as the password');
      return { principal, credentials: request.credentials, clientVersion: basicUserName(request.headers.authorization) };
    },
    accept: (socket, request, auth) => serve(hub, socket, request, auth),
  };
}

function serve(hub: Hub, socket: FleetSocket, request: UpgradeRequest, auth: RhizoAuth): void {
  const logger = hub.logger.child({ component: 'rhizo-ws', socket: socket.id });
  const connection: RhizoConnection = {
    hub,
    socket,
    logger,
    actor: { principal: auth.principal, ip: request.remoteAddress, requestId: socket.id },
    controller: undefined,
    subscriptions: new FolderSubscriptions(
      hub.services.folderMessages,
      () => senderOf(connection.actor.principal),
      (message: FolderMessage) => void socket.send(serverFrame(message.type, message.parameters, message.at)),
    ),
    sendError: (message) => void socket.send(errorFrame(message)),
  };
  // Frames wait in the socket until the controller's folder is known: `self` and relative names need it.
  const ready = connected(connection, auth);

  socket.onText(async (text) => {
    if (!(await ready)) return;
    const parsed = parseFrame(text);
    if ('unparseable' in parsed) {
      logger.info('closing a rhizo connection that sent a frame that is not JSON');
      socket.close(unparseableClose.code, unparseableClose.reason);
      return;
    }
    if ('problem' in parsed) {
      connection.sendError(parsed.problem);
      return;
    }
    const { frame } = parsed;
    try {
      await (handlers.get(frame.type) ?? routeMessage)(connection, frame);
    } catch (error) {
      if (!(error instanceof FleetError) || error.code === 'internal') logger.error({ err: error, type: frame.type }, 'rhizo message failed');
      connection.sendError(error instanceof FleetError && error.code !== 'internal' ? error.message : 'internal error');
    }
  });

  recheckCredentials(hub, socket, auth.credentials, logger, (current) => {
    if (current) connection.actor = { ...connection.actor, principal: current };
  });

  socket.onClose(() => {
    connection.subscriptions.close();
  });
}

/**
 * A controller's connection: its folder, and in its system_attributes the client version and the
 * time of this connect (rhizo's ControllerStatus). A failure closes the connection: without its
 * folder a controller's messages have nowhere to go.
 */
async function connected(connection: RhizoConnection, auth: RhizoAuth): Promise<boolean> {
  const principal = auth.principal;
  if (principal.kind !== 'device') return true;
  try {
    const folder = await connection.hub.services.resources.deviceFolder(principal.deviceId);
    connection.controller = folder;
    await changeSystemAttributes(connection.hub.services.store.db, folder.id, (current) => ({
      ...current,
      ...(auth.clientVersion !== undefined && { client_version: auth.clientVersion }),
      last_connect_timestamp: nowIso(),
    }));
    return true;
  } catch (error) {
    connection.logger.error({ err: error, deviceId: principal.deviceId }, 'rhizo controller connect failed');
    connection.socket.close(closeCodes.internal, 'internal error');
    return false;
  }
}

/** The user name of `Basic base64(<name>:<password>)`, cut to a sane length; undefined for other schemes. */
function basicUserName(header: string | undefined): string | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(0, colon).slice(0, longestClientVersion);
}
