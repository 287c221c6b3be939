import { badRequest } from '../../../core/errors.ts';
import type { ResourceInfo } from '../../../services/resources/resource-info.ts';
import { principalOf, type RhizoConnection } from './context.ts';

/**
 * The folder a message names: a path, `self` (rhizo also sends `[self]`) for the controller's own
 * folder, or an id (rhizo's are numbers, fleetd's text: both taken). Undefined for `self` on a
 * connection that is no controller. Not found / forbidden as the resource tree decides.
 */
export async function folderOf(connection: RhizoConnection, ref: unknown, need: 'read' | 'write'): Promise<ResourceInfo | undefined> {
  const { resources } = connection.hub.services;
  if (ref === 'self' || ref === '[self]') return connection.controller;
  if (typeof ref === 'string' && ref.startsWith('/')) return resources.resolve(principalOf(connection), ref, need);
  if ((typeof ref === 'string' && ref !== '') || (typeof ref === 'number' && Number.isSafeInteger(ref))) return resources.byId(principalOf(connection), String(ref), need);
  throw badRequest('expected a folder path, id or self');
}

/** How rhizo names a folder reference in its error messages. */
export const describeRef = (ref: unknown): string => (typeof ref === 'string' ? ref : JSON.stringify(ref) ?? 'undefined').slice(0, 200);
