import { FleetError } from '../../../core/errors.ts';
import { principalOf, type MessageHandler } from './context.ts';
import { describeRef, folderOf } from './folders.ts';
import { resourceErrorText } from './frames.ts';

/**
 * Every type the server does not handle itself: stored on `folder` (path or id) or, without one, on
 * the sending controller's folder, given write access there, and delivered to the subscribers of
 * every node (never back to its sender). FolderMessages checks the type (at most 40 characters) and
 * that the parameters are an object; none at all are taken as `{}`.
 */
export const routeMessage: MessageHandler = async (connection, frame) => {
  const ref = frame.folder ?? 'self';
  try {
    const folder = await folderOf(connection, ref, 'write');
    if (!folder) {
      connection.sendError('expected a folder for the message');
      return;
    }
    await connection.hub.services.folderMessages.send(principalOf(connection), folder, frame.type, (frame.parameters ?? {}) as Record<string, unknown>);
  } catch (error) {
    if (!(error instanceof FleetError)) throw error;
    connection.sendError(resourceErrorText(error, describeRef(ref)));
  }
};
