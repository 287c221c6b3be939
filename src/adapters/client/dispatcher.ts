import type { Principal } from '../../core/access.ts';
import { forbidden, unauthenticated } from '../../core/errors.ts';
import type { Hub } from '../../hub/hub.ts';
import type { Actor } from '../../services/actor.ts';
import { Dispatcher } from '../jsonrpc/dispatcher.ts';
import type { CallContext } from '../jsonrpc/methods.ts';
import { registerAdmissionMethods } from './admission-methods.ts';
import { registerCallMethods } from './call-methods.ts';
import { registerDeviceMethods } from './device-methods.ts';
import { registerSubscriptionMethods, type EventSubscriptions } from './subscriptions.ts';

/** What a client call carries, over WebSocket or HTTP. */
export interface ClientContext extends CallContext {
  /** Where the call came from, and the HTTP request or socket that carried it: for the audit log. */
  ip?: string;
  requestId?: string;
  /** The connection's event subscriptions; only a WebSocket has them. */
  subscriptions?: EventSubscriptions;
  /** Run once the reply to the frame has been sent: a new subscription starts its events after its reply. */
  afterReply?: Array<() => void>;
}

/** The methods of /api/ws and POST /api/rpc. */
export function clientDispatcher(hub: Hub): Dispatcher<ClientContext> {
  const dispatcher = new Dispatcher<ClientContext>({ logger: hub.logger.child({ component: 'clients' }) });
  registerDeviceMethods(dispatcher, hub);
  registerCallMethods(dispatcher, hub);
  registerAdmissionMethods(dispatcher, hub);
  registerSubscriptionMethods(dispatcher, hub);
  return dispatcher;
}

/** Clients are people and their programs: users and their API keys. Devices have endpoints of their own. */
export function clientPrincipal(principal: Principal | undefined): Principal {
  if (!principal) throw unauthenticated('Authentication required: send "Authorization: Bearer <token or API key>", a "bearer.<token>" subprotocol or ?token=');
  if (principal.kind === 'device') throw forbidden('Device credentials cannot be used by clients; devices connect to their own endpoints');
  return principal;
}

export const actorOf = (context: ClientContext & { principal: Principal }): Actor => ({ principal: context.principal, ip: context.ip, requestId: context.requestId });
