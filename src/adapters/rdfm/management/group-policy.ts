import { badRequest } from '../../../core/errors.ts';
import type { DeviceGroup, UpdatePolicy } from '../../../services/groups.ts';

const maxVersionLength = 200;
const controlCharacters = /[\u0000-\u001f\u007f]/;

/**
 * RDFM's policy string, `<name>,<arguments>`: `no_update,` (no update) or `exact_match,<version>`
 * (update to that version), as fleetd's update policy. Anything else is RDFM's 400 `invalid policy: …`.
 */
export function parsePolicy(text: string): UpdatePolicy {
  const comma = text.indexOf(',');
  if (comma < 0) throw badRequest('invalid policy: expected <name>,<arguments>');
  const name = text.slice(0, comma);
  const argument = text.slice(comma + 1);
  if (name === 'no_update') {
    if (argument !== '') throw badRequest('invalid policy: no_update takes no arguments');
    return { policy: 'no_update' };
  }
  if (name === 'exact_match') {
    if (argument.length === 0 || argument.length > maxVersionLength || controlCharacters.test(argument)) {
      throw badRequest(`invalid policy: exact_match takes a version of 1 to ${maxVersionLength} characters`);
    }
    return { policy: 'exact_match', targetVersion: argument };
  }
  throw badRequest(`invalid policy: unknown policy ${JSON.stringify(name.slice(0, 100))}`);
}

export const policyText = (group: Pick<DeviceGroup, 'updatePolicy' | 'targetVersion'>): string =>
  group.updatePolicy === 'exact_match' ? `exact_match,${group.targetVersion ?? ''}` : 'no_update,';
