import type { Config } from '../config/keys.ts';
import type { Principal } from '../core/access.ts';
import type { Bus } from '../hub/bus.ts';
import type { EventStream } from '../hub/events.ts';
import type { Logger } from '../log.ts';
import type { Store } from '../store/store.ts';
import { Admission } from './admission.ts';
import { ApiKeys } from './api-keys.ts';
import { Authenticator } from './authenticator.ts';
import { NodeCache } from './node-cache.ts';
import { Devices } from './devices.ts';
import { Groups } from './groups.ts';
import { Memberships } from './memberships.ts';
import { OidcTokens } from './oidc.ts';
import { Organizations, type Organization } from './organizations.ts';
import { loadJwtSecret, Sessions } from './sessions.ts';
import { Throttle } from './throttle.ts';
import { Users } from './users.ts';

/** The use cases of fleetd's core, shared by every protocol adapter. */
export interface Services {
  store: Store;
  organizations: Organizations;
  users: Users;
  memberships: Memberships;
  apiKeys: ApiKeys;
  devices: Devices;
  admission: Admission;
  groups: Groups;
  sessions: Sessions;
  throttle: Throttle;
  authenticator: Authenticator;
}

/** Published after each commit of identity data, so that every node forgets what it cached. */
const identityChanged = 'fleetd.identity.changed';

export async function createServices(store: Store, config: Config, bus: Bus, logger: Logger, events: Pick<EventStream, 'publish'>): Promise<Services> {
  const throttle = new Throttle(store.db, { maxFailures: config.throttleMaxFailures, windowSeconds: config.throttleWindow });
  const jwtSecret = await loadJwtSecret(store.db, config.jwtSecret);
  const sessions = new Sessions(store, { accessTokenTtl: config.accessTokenTtl, refreshTokenTtl: config.refreshTokenTtl, jwtSecret }, throttle);
  const principals = new NodeCache<Principal>(config.cacheTtl * 1000);
  const organizationCache = new NodeCache<Organization>(config.cacheTtl * 1000);
  const forget = () => {
    principals.invalidate();
    organizationCache.invalidate();
  };
  await bus.subscribe(identityChanged, forget);
  store.onCommit(() => {
    forget();
    try {
      bus.publish(identityChanged, null);
    } catch (error) {
      // The other nodes then catch up within cacheTtl; the change itself is committed.
      logger.warn({ err: error }, 'could not tell the other nodes to forget cached identity data');
    }
  });
  const organizations = new Organizations(store, organizationCache);
  const apiKeys = new ApiKeys(store, organizations);
  const oidc = config.oidcIssuer
    ? new OidcTokens(store, {
        issuer: config.oidcIssuer,
        jwksUrl: config.oidcJwksUrl,
        audience: config.oidcAudience,
        rolesClaim: config.oidcRolesClaim,
        roleMap: config.oidcRoleMap as Record<string, never>,
        organization: config.oidcOrganization,
        emailClaim: config.oidcEmailClaim,
      })
    : undefined;
  const devices = new Devices(store, organizations);
  const admission = new Admission({ store, organizations, devices, events, bus, config, logger: logger.child({ component: 'admission' }) });
  await admission.start();
  return {
    store,
    organizations,
    users: new Users(store),
    memberships: new Memberships(store, organizations),
    apiKeys,
    devices,
    admission,
    groups: new Groups(store, organizations),
    sessions,
    throttle,
    authenticator: new Authenticator(apiKeys, sessions, oidc, throttle, principals),
  };
}
