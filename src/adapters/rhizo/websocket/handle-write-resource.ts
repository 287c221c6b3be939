import { FleetError } from '../../../core/errors.ts';
import { type MessageHandler } from './context.ts';
import { param, parametersObject, resourceErrorText } from './frames.ts';
import { writeValue } from './write-value.ts';

/** `write_resource {path, data}`: a value written now to the sequence at a full path, with write access; rhizo's error texts. */
export const handleWriteResource: MessageHandler = async (connection, frame) => {
  const parameters = parametersObject(frame.parameters);
  const path = param(parameters, 'path');
  const data = param(parameters, 'data');
  if (typeof path !== 'string' || !path.startsWith('/') || data === undefined || data === null) {
    connection.sendError('expected data and path parameters for write_resource message');
    return;
  }
  try {
    await writeValue(connection, path, data);
  } catch (error) {
    if (!(error instanceof FleetError)) throw error;
    connection.sendError(resourceErrorText(error, path));
  }
};
