import { FleetError } from '../../../core/errors.ts';
import { type MessageHandler } from './context.ts';
import { describeRef, folderOf } from './folders.ts';
import { param, parametersObject } from './frames.ts';

/**
 * `subscribe {subscriptions: [{folder, message_type?, include_children?}]}`. fleetd does not tell an
 * unknown folder from one the connection may not read (as its REST API), so both answer an `error`
 * frame, where rhizo skips an unreadable folder silently; unlike rhizo, which stops at an unknown
 * path, the remaining entries are still taken.
 */
export const handleSubscribe: MessageHandler = async (connection, frame) => {
  const list = param(parametersObject(frame.parameters), 'subscriptions');
  if (!Array.isArray(list)) {
    connection.sendError('expected a subscriptions list for subscribe message');
    return;
  }
  for (const item of list) {
    const entry = parametersObject(item);
    const ref = param(entry, 'folder', 'folderId', 'folder_id');
    const messageType = param(entry, 'message_type', 'messageType') ?? null;
    // Truthy as in Python, where rhizo reads it.
    const includeChildren = Boolean(param(entry, 'include_children', 'includeChildren'));
    if (!entry || (messageType !== null && typeof messageType !== 'string')) {
      connection.sendError('expected {folder, message_type?, include_children?} for each subscription');
      continue;
    }
    try {
      const folder = await folderOf(connection, ref, 'read');
      if (folder) connection.subscriptions.add(folder, { includeChildren, messageType });
    } catch (error) {
      if (!(error instanceof FleetError)) throw error;
      connection.sendError(error.code === 'not_found' ? `resource not found: ${describeRef(ref)}` : error.message);
    }
  }
};
