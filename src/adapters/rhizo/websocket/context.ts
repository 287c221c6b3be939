import type { Principal } from '../../../core/access.ts';
import type { Hub } from '../../../hub/hub.ts';
import type { FleetSocket } from '../../../hub/socket.ts';
import type { Logger } from '../../../log.ts';
import type { Actor } from '../../../services/actor.ts';
import type { ResourceInfo } from '../../../services/resources/resource-info.ts';
import type { ClientFrame } from './frames.ts';
import type { FolderSubscriptions } from './subscriptions.ts';

/** One rhizo WebSocket connection, as its message handlers see it. */
export interface RhizoConnection {
  hub: Hub;
  socket: FleetSocket;
  logger: Logger;
  /** Checked again while the connection is open: a revoked key ends it. */
  actor: Actor;
  /** The folder of the device when a device key connected: rhizo's controller. */
  controller: ResourceInfo | undefined;
  subscriptions: FolderSubscriptions;
  /** Sends an `error` frame, rhizo's answer to a message it could not handle. */
  sendError(message: string): void;
}

export const principalOf = (connection: RhizoConnection): Principal => connection.actor.principal;

/** What handles one message type. A FleetError it throws becomes an `error` frame. */
export type MessageHandler = (connection: RhizoConnection, frame: ClientFrame) => Promise<void> | void;
