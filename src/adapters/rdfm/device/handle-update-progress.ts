import { Type } from 'typebox';
import { FleetError } from '../../../core/errors.ts';
import type { FrameHandler } from './frame-handler.ts';

/**
 * `update_progress`: RDFM's device reports one number while it downloads and writes its update; 100
 * means the image is installed and the device restarts into it. fleetd's report: `downloading` below
 * 100, `installing` at 100; success comes with the version the device then runs (update_version, or
 * the next authentication's metadata).
 */
export const updateProgress: FrameHandler<{ progress: number }> = {
  method: 'update_progress',
  schema: Type.Object({ progress: Type.Integer({ minimum: 0, maximum: 100 }) }),
  async handle(connection, { progress }) {
    try {
      await connection.hub.services.updates.report(connection.device, { status: progress < 100 ? 'downloading' : 'installing', progress });
    } catch (error) {
      // A device updating by other means than fleetd's offer has nothing to report against.
      if (error instanceof FleetError && error.code === 'conflict') return;
      throw error;
    }
  },
};
