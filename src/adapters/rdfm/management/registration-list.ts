import { isSystemAdmin, type Principal } from '../../../core/access.ts';
import { canonicalPem, parsePublicKeyPem } from '../../../core/public-keys.ts';
import type { PendingDevice } from '../../../services/admission.ts';
import type { Services } from '../../../services/index.ts';

/** RDFM's pending registration: a device of endpoint `rdfm` in fleetd's waiting room, with its whole key. */
export interface Registration {
  entry: PendingDevice;
  /** Canonical PEM, as the device's authentication stored it. */
  publicKey: string;
}

/** More waiting devices than this are not listed (the waiting room holds `waitingRoomSize`, 1000 by default). */
const maxRegistrations = 10000;
const pageSize = 500;

async function waiting(services: Services, principal: Principal, orgId: string | undefined, state: 'pending' | undefined): Promise<PendingDevice[]> {
  const entries: PendingDevice[] = [];
  let cursor: string | undefined;
  do {
    const page = await services.admission.listPending(principal, orgId, state ? { state } : {}, { limit: pageSize, cursor });
    entries.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined && entries.length < maxRegistrations);
  return entries;
}

/**
 * The RDFM devices waiting to be registered in `orgId` that the caller may decide on: those waiting
 * there (rdfmOrg set), and, for system admins, those waiting without an organization. With
 * `pendingOnly` false, devices denied with fleetd's API too (registering one accepts it, deleting
 * one forgets the denial).
 */
export async function rdfmRegistrations(services: Services, principal: Principal, orgId: string, pendingOnly: boolean): Promise<Registration[]> {
  const state = pendingOnly ? 'pending' : undefined;
  const entries = await waiting(services, principal, orgId, state);
  if (isSystemAdmin(principal)) entries.push(...(await waiting(services, principal, undefined, state)));
  const rdfm = entries.filter((entry) => entry.endpoint === 'rdfm').slice(0, maxRegistrations);
  const keys = await services.admission.publicKeysOf(rdfm.map((entry) => entry.id));
  return rdfm.flatMap((entry) => {
    const publicKey = keys.get(entry.id);
    return publicKey === undefined ? [] : [{ entry, publicKey }];
  });
}

/** The key text in fleetd's canonical PEM, or undefined when it is no PEM public key (then it names no registration). */
function canonicalKey(text: string): string | undefined {
  try {
    return canonicalPem(parsePublicKeyPem(text));
  } catch {
    return undefined;
  }
}

/** The registration of the device `macAddress` with exactly this key, if the caller may decide on it. */
export async function findRegistration(services: Services, principal: Principal, orgId: string, macAddress: string, publicKey: string): Promise<Registration | undefined> {
  const key = canonicalKey(publicKey);
  if (key === undefined) return undefined;
  const registrations = await rdfmRegistrations(services, principal, orgId, false);
  return registrations.find((registration) => registration.entry.externalId === macAddress && registration.publicKey === key);
}
