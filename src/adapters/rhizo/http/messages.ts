import type { FastifyInstance } from 'fastify';
import { badRequest } from '../../../core/errors.ts';
import { isFolderType } from '../../../core/resource-paths.ts';
import { actorOf } from '../../../http/access.ts';
import { Params } from './forms.ts';
import type { RhizoOptions } from './plugin.ts';

/** rhizo's REST way to send a folder message (its clients mostly use the WebSocket). */
export async function messageRoutes(app: FastifyInstance, { services, bodyLimit }: RhizoOptions): Promise<void> {
  app.post('/api/v1/messages', { config: { access: { actions: ['resource.write'] } } }, async (request) => {
    const { principal } = actorOf(request);
    const params = await Params.of(request, bodyLimit);
    const folderPath = params.string('folder_path', 'folderPath');
    if (!folderPath?.startsWith('/')) throw badRequest('folder_path must be an absolute path');
    const type = params.required('type');
    // Checked before the folder is looked up, so that a malformed message says so whatever the folder.
    const parameters = params.json('parameters') ?? {};
    const folder = await services.resources.resolve(principal, folderPath, 'write');
    if (!isFolderType(folder.type)) throw badRequest(`${folder.path} is not a folder`);
    await services.folderMessages.send(principal, folder, type, parameters);
    return { status: 'ok' };
  });
}
