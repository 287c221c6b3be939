import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { FleetError } from '../../../core/errors.ts';
import { baseUrlOf } from '../../../http/base-url.ts';
import type { FilePull } from '../../../services/remote/file-pulls.ts';
import type { RdfmRouteOptions } from '../plugin.ts';
import { bodyValidator } from '../validation.ts';
import { fleetdIdOf, managementOf } from './context.ts';

const FileBody = Type.Object({ file: Type.String({ minLength: 1, maxLength: 4096 }) });
const validateFile = bodyValidator<{ file: string }>(FileBody);

/** How often the route looks at the pull while the device works on it. */
const pollMs = 250;

/** RDFM's status of a pull that ended without a file: the device's own when it reported one (handle-fs-file-*-reply.ts), else -1. */
function rdfmStatus(pull: FilePull): number {
  const reported = /^device status (-?[0-9]+)$/.exec(pull.error ?? '');
  return reported ? Number(reported[1]) : -1;
}

/**
 * `POST /api/v2/devices/<id>/fs/file` `{"file"}`: RDFM's file download, on fleetd's file pulls
 * (docs/ota.md#file-pulls). The pull is asked of the device (`fs_file_probe`, then its parts through
 * `/local_storage_multipart`), and the request waits until it ends: `{"status": 0, "url"}` with a
 * signed link to the pulled file, or RDFM's `{"status", "url": ""}`. Admins only, as file pulls are.
 */
export async function fsFileRoutes(app: FastifyInstance, options: RdfmRouteOptions): Promise<void> {
  const { services, config, links } = options;
  // A pending pull fails within filePullTimeout (swept); joining its parts that follows is given as long again.
  const waitMs = 2 * config.filePullTimeout * 1000;

  app.post<{ Params: { id: string } }>('/api/v2/devices/:id/fs/file', { config: { access: { actions: ['device.files'] } } }, async (request, reply) => {
    const { file } = validateFile(request.body);
    const { actor, org } = await managementOf(request, options);
    const deviceId = await fleetdIdOf(options, 'device', request.params.id, 'Device');
    let pull = await services.filePulls.request(actor, org.id, deviceId, file);
    const baseUrl = baseUrlOf(request.raw, config);
    try {
      await links.call(pull.deviceId, 'Fleetd.UploadFile', { pullId: pull.id, path: pull.path, url: `${baseUrl}/api/devices/file-pulls/${pull.id}/content` });
    } catch (error) {
      await services.filePulls.fail(pull.id, `the device did not take the request: ${error instanceof FleetError ? error.message : 'internal error'}`);
      throw error;
    }
    // The wait ends when the client leaves: nobody reads the answer then.
    let left = false;
    reply.raw.once('close', () => (left = true));
    const deadline = Date.now() + waitMs;
    while ((pull.status === 'pending' || pull.status === 'uploading') && !left && Date.now() < deadline) {
      await sleep(pollMs);
      pull = await services.filePulls.get(actor.principal, org.id, pull.id);
    }
    if (pull.status !== 'done') return { status: pull.status === 'failed' ? rdfmStatus(pull) : -1, url: '' };
    return { status: 0, url: `${baseUrl}/api/file-pulls/download/${await services.filePulls.downloadToken(actor.principal, org.id, pull.id)}` };
  });
}
