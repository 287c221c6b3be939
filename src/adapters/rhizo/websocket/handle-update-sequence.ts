import { FleetError } from '../../../core/errors.ts';
import { type MessageHandler } from './context.ts';
import { param, parametersObject, resourceErrorText } from './frames.ts';
import { parseRhizoTimestamp } from '../timestamps.ts';
import { writeValue } from './write-value.ts';

/**
 * `update_sequence {sequence, value, timestamp?}` (legacy `setNode` names it `node`): a controller
 * writes one of its sequences, named relative to its folder (or by full path, with write access).
 * rhizo ignores `timestamp`; fleetd honours it (ISO-8601 UTC), so values buffered offline land at
 * their own time. Errors come back as `error` frames.
 */
export const handleUpdateSequence: MessageHandler = async (connection, frame) => {
  const controller = connection.controller;
  if (!controller) {
    connection.sendError('update_sequence is for controllers only');
    return;
  }
  const parameters = parametersObject(frame.parameters);
  const sequence = param(parameters, 'sequence', 'node');
  const value = param(parameters, 'value');
  const timestamp = param(parameters, 'timestamp');
  if (typeof sequence !== 'string' || sequence === '' || value === undefined || value === null) {
    connection.sendError('expected sequence and value parameters for update_sequence message');
    return;
  }
  const path = sequence.startsWith('/') ? sequence : `${controller.path}/${sequence}`;
  try {
    const t = timestamp === undefined || timestamp === null ? undefined : parseRhizoTimestamp(String(timestamp));
    await writeValue(connection, path, value, t);
  } catch (error) {
    if (!(error instanceof FleetError)) throw error;
    connection.sendError(resourceErrorText(error, path));
  }
};
