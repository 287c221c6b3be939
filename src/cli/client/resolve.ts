import { ApiError, type ApiClient } from './api-client.ts';

/** fleetd ids: a type prefix and 26 characters of base32 (src/core/ids.ts). */
const idPattern = (prefix: string) => new RegExp(`^${prefix}_[0-9a-z]{26}$`);

interface Named {
  id: string;
  name: string;
}

/**
 * The id of what `ref` names: an id as it is, else the one item of `listPath` with exactly that
 * name (the list's `q` narrows by text first). People remember names; the API wants ids.
 */
async function resolveByName(client: ApiClient, ref: string, prefix: string, listPath: string, what: string): Promise<string> {
  if (idPattern(prefix).test(ref)) return ref;
  const matches = (await client.listAll<Named>(client.orgPath(listPath), { q: ref })).filter((item) => item.name === ref);
  if (matches.length === 1) return matches[0]!.id;
  if (matches.length === 0) throw new ApiError(`No ${what} named ${JSON.stringify(ref)} in organization ${client.settings.org}`);
  throw new ApiError(`${matches.length} ${what}s are named ${JSON.stringify(ref)}: give the id (${matches.map((m) => m.id).join(', ')})`);
}

export const resolveGroup = (client: ApiClient, ref: string) => resolveByName(client, ref, 'grp', '/groups', 'group');

export const resolveDevice = (client: ApiClient, ref: string) => resolveByName(client, ref, 'dev', '/devices', 'device');
