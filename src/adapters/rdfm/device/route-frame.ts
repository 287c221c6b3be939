import { FleetError } from '../../../core/errors.ts';
import { compileSchema } from '../../../core/validation.ts';
import { refuse, type RdfmConnection } from './connection.ts';
import type { FrameHandler } from './frame-handler.ts';
import { actionExecControl } from './handle-action-exec-control.ts';
import { actionExecResult } from './handle-action-exec-result.ts';
import { actionListUpdate } from './handle-action-list-update.ts';
import { capabilityReport } from './handle-capability-report.ts';
import { fsFileDownloadReply } from './handle-fs-file-download-reply.ts';
import { fsFileProbeReply } from './handle-fs-file-probe-reply.ts';
import { updateProgress } from './handle-update-progress.ts';
import { updateVersion } from './handle-update-version.ts';

const handlers = new Map(
  [capabilityReport, actionListUpdate, actionExecControl, actionExecResult, updateProgress, updateVersion, fsFileProbeReply, fsFileDownloadReply].map((handler: FrameHandler) => [
    handler.method,
    { handler, validate: compileSchema(handler.schema) },
  ]),
);

/** Errors that say the device asked for something wrong (RDFM closes 4001), rather than that fleetd failed. */
const deviceFault = new Set(['bad_request', 'validation_failed', 'not_found', 'forbidden', 'conflict', 'payload_too_large']);

/**
 * One text frame from the device: a JSON object whose `method` names a device → server message
 * (the `fs_file_*_reply` ones carry fleetd's file pulls, whose pull id is RDFM's `id`). Anything
 * else closes the socket with 4001, as RDFM does.
 */
export async function routeFrame(connection: RdfmConnection, text: string): Promise<void> {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return refuse(connection, 'invalid JSON');
  }
  const method = typeof frame === 'object' && frame !== null && !Array.isArray(frame) ? (frame as { method?: unknown }).method : undefined;
  const entry = typeof method === 'string' ? handlers.get(method) : undefined;
  if (!entry) return refuse(connection, 'unknown method');
  if (!entry.validate(frame)) return refuse(connection, `invalid ${entry.handler.method}`);
  try {
    await entry.handler.handle(connection, frame);
  } catch (error) {
    if (error instanceof FleetError && deviceFault.has(error.code)) return refuse(connection, `${entry.handler.method}: ${error.message}`);
    throw error;
  }
}
