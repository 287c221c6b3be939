import { randomUUID } from 'node:crypto';
import { Type } from 'typebox';
import { badRequest } from '../../../core/errors.ts';
import type { DeviceGroup, GroupInput } from '../../../services/groups.ts';

/** The metadata keys rdfm-mgmt names and describes groups with: fleetd keeps them as the group's name and description. */
export const groupNameKey = 'rdfm.group.name';
export const groupDescriptionKey = 'rdfm.group.description';

/** An RDFM group's metadata as fleetd keeps a group's (string values; fleetd's limits). */
export const GroupMetadata = Type.Record(Type.String({ minLength: 1, maxLength: 200 }), Type.String({ maxLength: 1000 }), { maxProperties: 100 });

const maxNameLength = 200;

/**
 * RDFM's group metadata as fleetd's group: `rdfm.group.name` the name (a unique `group-<uuid>`
 * when absent: fleetd's groups have names, RDFM's need not), `rdfm.group.description` the
 * description, and every other key the group's metadata.
 */
export function groupInputOf(metadata: Record<string, string>): Pick<GroupInput, 'name' | 'description' | 'metadata'> {
  const { [groupNameKey]: name = `group-${randomUUID()}`, [groupDescriptionKey]: description = '', ...rest } = metadata;
  if (name.length === 0 || name.length > maxNameLength) throw badRequest(`${groupNameKey} must have 1 to ${maxNameLength} characters`);
  return { name, description, metadata: rest };
}

/** The group's metadata as RDFM shows it: its name and description (when it has one) among its keys. */
export const rdfmGroupMetadata = (group: Pick<DeviceGroup, 'name' | 'description' | 'metadata'>): Record<string, string> => ({
  ...group.metadata,
  [groupNameKey]: group.name,
  ...(group.description !== '' && { [groupDescriptionKey]: group.description }),
});
