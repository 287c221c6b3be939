import { openBlobStore } from '../blob/open.ts';
import type { BlobStore } from '../blob/blob-store.ts';
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
import { FolderMessages } from './folder-messages.ts';
import { Groups } from './groups.ts';
import { Mailer } from './mailer.ts';
import { Memberships } from './memberships.ts';
import { OidcTokens } from './oidc.ts';
import { ResourceTree } from './resources/tree.ts';
import { Organizations, type Organization } from './organizations.ts';
import { RrduinoProfiles } from './rrduino-profiles.ts';
import { Series } from './series/series.ts';
import { loadJwtSecret, Sessions } from './sessions.ts';
import { Throttle } from './throttle.ts';
import { Users } from './users.ts';
import { ControllerWatchdog } from './watchdog.ts';
import { PackageLinks } from './packages/download-links.ts';
import { Packages } from './packages/packages.ts';
import { Deployments } from './deployments/deployments.ts';
import { UpdateNotices } from './updates/notices.ts';
import { Updates, type UpdateDecision } from './updates/updates.ts';
import { Actions } from './remote/actions.ts';
import { DeviceCapabilities } from './remote/capabilities.ts';
import { FilePulls } from './remote/file-pulls.ts';
import { PullLinks } from './remote/pull-links.ts';
import { ShellSessions } from './remote/shell-sessions.ts';

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
  blobs: BlobStore;
  resources: ResourceTree;
  rrduinoProfiles: RrduinoProfiles;
  series: Series;
  folderMessages: FolderMessages;
  mailer: Mailer;
  watchdog: ControllerWatchdog;
  /** OTA packages, their signing keys and download links. */
  packages: Packages;
  /** The update check and the reports of devices updating. */
  updates: Updates;
  /** Phased rollouts of a version to a group, and their engine. */
  deployments: Deployments;
  capabilities: DeviceCapabilities;
  actions: Actions;
  shellSessions: ShellSessions;
  filePulls: FilePulls;
  /** Writes what is queued and stops background work: after the hub closes, before the bus does. */
  close(): Promise<void>;
}

/** Published after each commit, so that every node forgets what it cached: identity data, update decisions. */
const identityChanged = 'fleetd.identity.changed';

export async function createServices(store: Store, config: Config, bus: Bus, logger: Logger, events: Pick<EventStream, 'publish' | 'onPublished'>): Promise<Services> {
  const throttle = new Throttle(store.db, { maxFailures: config.throttleMaxFailures, windowSeconds: config.throttleWindow });
  const jwtSecret = await loadJwtSecret(store.db, config.jwtSecret);
  const sessions = new Sessions(store, { accessTokenTtl: config.accessTokenTtl, refreshTokenTtl: config.refreshTokenTtl, jwtSecret }, throttle);
  const principals = new NodeCache<Principal>(config.cacheTtl * 1000);
  const organizationCache = new NodeCache<Organization>(config.cacheTtl * 1000);
  // One entry per polling device: room for a large fleet.
  const updateDecisions = new NodeCache<UpdateDecision>(config.cacheTtl * 1000, 100_000);
  const forget = () => {
    principals.invalidate();
    organizationCache.invalidate();
    updateDecisions.invalidate();
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
  const blobs = openBlobStore(config);
  const resources = new ResourceTree({ store, organizations, blobs, config });
  const packages = new Packages({ store, organizations, blobs, config, links: new PackageLinks(jwtSecret), logger: logger.child({ component: 'packages' }) });
  await packages.sweepAbandonedUploads();
  const notices = new UpdateNotices(bus, logger.child({ component: 'update-notices' }));
  const groups = new Groups(store, organizations, notices);
  const updates = new Updates({ store, organizations, groups, packages, decisions: updateDecisions, events, logger: logger.child({ component: 'updates' }) });
  const deployments = new Deployments({ store, organizations, groups, notices, logger: logger.child({ component: 'deployments' }), rolloutInterval: config.rolloutInterval });
  deployments.start();
  const admission = new Admission({ store, organizations, devices, events, bus, config, logger: logger.child({ component: 'admission' }) });
  await admission.start();
  const series = new Series({ store, resources, blobs, config, events, logger: logger.child({ component: 'series' }) });
  series.start();
  const folderMessages = new FolderMessages({ store, bus, series, config, logger: logger.child({ component: 'folder-messages' }) });
  await folderMessages.start();
  const mailer = new Mailer({ store, config, logger: logger.child({ component: 'mailer' }) });
  const watchdog = new ControllerWatchdog({ store, mailer, logger: logger.child({ component: 'watchdog' }) });
  watchdog.start();
  const actions = new Actions({ store, organizations, bus, config, logger: logger.child({ component: 'actions' }) });
  actions.start();
  const filePulls = new FilePulls({ store, organizations, blobs, config, links: new PullLinks(jwtSecret), logger: logger.child({ component: 'file-pulls' }) });
  filePulls.start();
  return {
    store,
    organizations,
    users: new Users(store),
    memberships: new Memberships(store, organizations),
    apiKeys,
    devices,
    admission,
    groups,
    sessions,
    throttle,
    authenticator: new Authenticator(apiKeys, sessions, oidc, throttle, principals),
    blobs,
    resources,
    rrduinoProfiles: new RrduinoProfiles({ store, organizations, resources }),
    series,
    folderMessages,
    mailer,
    watchdog,
    packages,
    updates,
    deployments,
    capabilities: new DeviceCapabilities(store),
    actions,
    shellSessions: new ShellSessions({ store, organizations }),
    filePulls,
    async close() {
      // The series first: the values it still writes tell their folders.
      await series.close();
      await folderMessages.close();
      await watchdog.close();
      await deployments.close();
      await actions.close();
      await filePulls.close();
      mailer.close();
    },
  };
}
