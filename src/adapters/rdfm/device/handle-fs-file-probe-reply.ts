import { Type } from 'typebox';
import { sendFrame } from './connection.ts';
import type { FrameHandler } from './frame-handler.ts';
import { partPlan, partUrl, unlessLate } from './fs-file-parts.ts';

/**
 * `fs_file_probe_reply`: the size of a file pulled from the device (fleetd's pull id is RDFM's
 * `id`). Status 0 is answered with `fs_file_download`: one signed upload URL per part, cut by S3's
 * rules; any other status, or a file above maxFilePullSize, ends the pull failed.
 */
export const fsFileProbeReply: FrameHandler<{ id: string; status: number; size?: number }> = {
  method: 'fs_file_probe_reply',
  schema: Type.Object({
    id: Type.String({ minLength: 1, maxLength: 100 }),
    status: Type.Integer({ minimum: -2147483648, maximum: 2147483647 }),
    size: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  }),
  async handle(connection, frame) {
    const { services, config } = connection.hub;
    const { device } = connection;
    await unlessLate(connection.logger, frame.id, async () => {
      if (frame.status !== 0) return services.filePulls.reportFailure(device, frame.id, `device status ${frame.status}`);
      if (frame.size === undefined) return services.filePulls.reportFailure(device, frame.id, 'the device reported no size');
      if (frame.size > config.maxFilePullSize) return services.filePulls.reportFailure(device, frame.id, 'the file is too large');
      const { parts, partSize } = partPlan(frame.size);
      const { pull, tokens } = await services.filePulls.partTokens(device, frame.id, parts, partSize);
      const upload_urls = tokens.map((token, i) => partUrl(connection.baseUrl, pull.id, i + 1, token));
      if (!sendFrame(connection, { method: 'fs_file_download', id: pull.id, file: pull.path, upload_urls, part_size: partSize })) {
        await services.filePulls.fail(pull.id, 'the device went offline');
      }
    });
  },
};
