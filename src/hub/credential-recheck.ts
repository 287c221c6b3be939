import type { Principal } from '../core/access.ts';
import { FleetError } from '../core/errors.ts';
import type { Logger } from '../log.ts';
import type { Credentials } from '../services/authenticator.ts';
import type { Hub } from './hub.ts';
import { closeCodes, type FleetSocket } from './socket.ts';

/** Longest time an open connection goes without its credentials being checked again. */
const maxRecheckSeconds = 30;
/** Refusals that mean the credentials are no good any more (a blocked address is refused bad ones only). */
const revoked = new Set(['unauthenticated', 'forbidden', 'rate_limited']);

/**
 * Checks the credentials a socket opened with again, every cacheTtl seconds (at most 30): a key
 * revoked or a session ended while the socket is open ends the socket too (4001), and a changed
 * role reaches `update`. Stops when the socket closes.
 */
export function recheckCredentials(hub: Hub, socket: FleetSocket, credentials: Credentials, logger: Logger, update: (principal: Principal | undefined) => void): void {
  let checking = false;
  const recheck = setInterval(
    () => {
      if (checking) return;
      checking = true;
      hub.services.authenticator
        .authenticate(credentials)
        .then(update)
        .catch((error: unknown) => {
          if (error instanceof FleetError && revoked.has(error.code)) {
            logger.info({ code: error.code }, 'closing a connection whose credentials no longer hold');
            socket.close(closeCodes.unauthenticated, 'credentials revoked');
          } else {
            logger.warn({ err: error }, 'could not check the credentials of a connection again');
          }
        })
        .finally(() => {
          checking = false;
        });
    },
    Math.min(Math.max(hub.config.cacheTtl, 1), maxRecheckSeconds) * 1000,
  );
  recheck.unref();
  socket.onClose(() => clearInterval(recheck));
}
