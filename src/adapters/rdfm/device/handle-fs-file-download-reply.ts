import { Readable } from 'node:stream';
import { Type } from 'typebox';
import { FleetError } from '../../../core/errors.ts';
import { pullPartKey } from '../../../services/remote/file-pulls.ts';
import type { RdfmConnection } from './connection.ts';
import type { FrameHandler } from './frame-handler.ts';
import { joinedParts, unlessLate } from './fs-file-parts.ts';

type DownloadReply = { id: string; status: number; etags?: string[] };

/** The device names a pull that is not its own, or none. */
const foreign = (error: unknown) => error instanceof FleetError && (error.code === 'not_found' || error.code === 'forbidden');

/** Ends the pull: failed with the device's status, or done with the parts its ETags name joined in order. */
async function settle(connection: RdfmConnection, frame: DownloadReply, etags: readonly string[]): Promise<unknown> {
  const count = etags.length;
  const { filePulls, blobs } = connection.hub.services;
  const { device } = connection;
  if (frame.status !== 0) return filePulls.reportFailure(device, frame.id, `device status ${frame.status}`);
  if (count === 0) return filePulls.reportFailure(device, frame.id, 'the device reported no parts');
  // A part past those reported would be left out: the file would not be what the device sent.
  if ((await blobs.stat(pullPartKey(device.orgId, frame.id, count + 1))) !== undefined) {
    return filePulls.reportFailure(device, frame.id, 'the device reported fewer parts than it uploaded');
  }
  return filePulls.receive(device, frame.id, Readable.from(joinedParts(blobs, device.orgId, frame.id, etags))).catch((error: unknown) => {
    // The pull ended failed with its reason (a missing part, too large, storage): no fault of the device's frame.
    if (foreign(error) || (error instanceof FleetError && error.code === 'conflict')) throw error;
    connection.logger.warn({ err: error, pullId: frame.id }, 'an RDFM file download could not be stored');
  });
}

/**
 * `fs_file_download_reply`: the device uploaded the parts (status 0, one etag a part), which are
 * joined in order into the pull's file, as S3 completes a multipart upload; any other status ends
 * the pull failed. The parts are removed either way, once the pull is known to be the device's.
 */
export const fsFileDownloadReply: FrameHandler<DownloadReply> = {
  method: 'fs_file_download_reply',
  schema: Type.Object({
    id: Type.String({ minLength: 1, maxLength: 100 }),
    status: Type.Integer({ minimum: -2147483648, maximum: 2147483647 }),
    etags: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 10_000 })),
  }),
  async handle(connection, frame) {
    const { filePulls } = connection.hub.services;
    const etags = frame.status === 0 ? (frame.etags ?? []) : [];
    const count = etags.length;
    try {
      await unlessLate(connection.logger, frame.id, () => settle(connection, frame, etags));
    } catch (error) {
      if (!foreign(error)) await filePulls.removeParts(connection.device.orgId, frame.id, count);
      throw error;
    }
    await filePulls.removeParts(connection.device.orgId, frame.id, count);
  },
};
