import { Type } from 'typebox';
import { recordVersion } from '../../../services/updates/updates.ts';
import type { FrameHandler } from './frame-handler.ts';

/**
 * `update_version`: the version the device runs now becomes its firmware and `rdfm.software.version`;
 * when it is the one fleetd offered, the device's update succeeded.
 */
export const updateVersion: FrameHandler<{ version: string }> = {
  method: 'update_version',
  schema: Type.Object({ version: Type.String({ minLength: 1, maxLength: 200 }) }),
  async handle(connection, { version }) {
    const { hub, device } = connection;
    const update = await hub.services.store.db.selectFrom('device_updates').select(['status', 'target_version']).where('device_id', '=', device.id).executeTakeFirst();
    if (update && update.target_version === version && update.status !== 'success' && update.status !== 'failure') {
      await hub.services.updates.report(device, { status: 'success', version });
      return;
    }
    await hub.services.store.transaction((tx) => recordVersion(tx, device, version));
  },
};
