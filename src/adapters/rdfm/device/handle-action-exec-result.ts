import { Type } from 'typebox';
import { FleetError } from '../../../core/errors.ts';
import type { FrameHandler } from './frame-handler.ts';

/** `action_exec_result`: completes the run with the exit code and output; another device's or an unknown run ends the socket (4001). */
export const actionExecResult: FrameHandler<{ execution_id: string; status_code: number; output: string }> = {
  method: 'action_exec_result',
  schema: Type.Object({
    execution_id: Type.String({ minLength: 1, maxLength: 100 }),
    status_code: Type.Integer({ minimum: -2147483648, maximum: 2147483647 }),
    // Base64 of at most 1 MiB, as fleetd's own devices report.
    output: Type.String({ maxLength: 1_398_104, pattern: '^[A-Za-z0-9+/]*={0,2}$' }),
  }),
  async handle(connection, frame) {
    try {
      await connection.hub.services.actions.complete(connection.device, frame.execution_id, { exitCode: frame.status_code, output: Buffer.from(frame.output, 'base64') });
    } catch (error) {
      // A result for a run that waits for none (timed out, cancelled) is dropped, as it came too late.
      if (error instanceof FleetError && error.code === 'conflict') {
        connection.logger.info({ runId: frame.execution_id }, 'an RDFM action result for a run that waits for none');
        return;
      }
      throw error;
    }
  },
};
