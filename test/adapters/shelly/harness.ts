import assert from 'node:assert/strict';
import type { ConfigKey } from '../../../src/config/keys.ts';
import type { Principal } from '../../../src/core/access.ts';
import type { HubEvent } from '../../../src/hub/events.ts';
import type { Hub } from '../../../src/hub/hub.ts';
import type { Backend } from '../../helpers/backends.ts';
import { memberWithRole, request, startTestServer, type TestServer } from '../../helpers/server.ts';
import { eventually } from '../../hub/websocket-harness.ts';
import { ShellySimulator } from './simulator.ts';

/** A fleetd server with its device endpoints, the hub events it publishes, and helpers for the steps of a device's life. */
export interface ShellyServer {
  test: TestServer;
  hub: Hub;
  /** ws://127.0.0.1:<port> */
  wsUrl: string;
  /** Every hub event this node heard, in order. */
  events: HubEvent[];
  /** An admin of organization `default` (not a system admin). */
  orgAdmin: Principal;
  orgId: string;
  close(): Promise<void>;
}

export async function startShellyServer(backend: Backend, overrides: Partial<Record<ConfigKey, string>> = {}): Promise<ShellyServer> {
  const test = await startTestServer(backend, { messageLog: 'off', ...overrides });
  try {
    const { hub } = test.server;
    const events: HubEvent[] = [];
    const stopListening = hub.events.listen((event) => events.push(event));
    const admin = await memberWithRole(test, test.admin.orgId, `shelly-admin-${Math.random().toString(36).slice(2)}@example.com`, 'admin');
    const orgAdmin = (await test.services.authenticator.authenticate({ authorization: `Bearer ${admin.token}` }))!;
    return {
      test,
      hub,
      wsUrl: test.url.replace(/^http/, 'ws'),
      events,
      orgAdmin,
      orgId: test.admin.orgId,
      async close() {
        stopListening();
        await test.close();
      },
    };
  } catch (error) {
    await test.close();
    throw error;
  }
}

/** The first hub event from the `since`-th on (already heard or still to come) that `match` accepts. */
export async function hubEvent(server: ShellyServer, match: (event: HubEvent) => boolean, options: { since?: number; what?: string; timeoutMs?: number } = {}): Promise<HubEvent> {
  const since = options.since ?? 0;
  const find = () => server.events.slice(since).find(match);
  await eventually(() => find() !== undefined, options.timeoutMs ?? 5000, options.what ?? 'a hub event');
  return find()!;
}

/** The waiting room entry of a device, once it shows for the organization's admins. */
export async function pendingEntry(server: ShellyServer, externalId: string) {
  let found: { id: string; externalId: string; state: string } | undefined;
  await eventually(
    async () => {
      const page = await server.hub.services.admission.listPending(server.orgAdmin, server.orgId, { state: 'pending' }, { limit: 100 });
      found = page.items.find((item) => item.externalId === externalId);
      return found !== undefined;
    },
    5000,
    `${externalId} waiting for admission`,
  );
  return found!;
}

/** The device as the registry shows it to the org admin, through the REST API. */
export async function registryDevice(server: ShellyServer, deviceId: string): Promise<{ body: any; state: any }> {
  const device = await request(server.test.url, 'GET', `/api/orgs/${server.orgId}/devices/${deviceId}`, { token: server.test.admin.token });
  assert.equal(device.status, 200, JSON.stringify(device.body));
  const state = await request(server.test.url, 'GET', `/api/orgs/${server.orgId}/devices/${deviceId}/state`, { token: server.test.admin.token });
  assert.equal(state.status, 200, JSON.stringify(state.body));
  return { body: device.body, state: state.body };
}

/** Waits until the device's hydration is stored: the device.info event of this device. */
export function hydrated(server: ShellyServer, deviceId: string, since = 0): Promise<HubEvent> {
  return hubEvent(server, (event) => event.name === 'device.info' && event.deviceId === deviceId, { since, what: `hydration of ${deviceId}` });
}


/** The HTTP status an upgrade was refused with. */
export const upgradeStatus = (url: string, headers: Record<string, string> = {}): Promise<number> =>
  ShellySimulator.connect({ url, headers }).then(
    async (accepted) => {
      await accepted.close();
      return assert.fail(`${url} was accepted`);
    },
    (error: { status?: number }) => error.status ?? 0,
  );
