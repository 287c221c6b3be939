import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { authorize, isSystemAdmin } from '../../../core/access.ts';
import { badRequest, forbidden } from '../../../core/errors.ts';
import type { ApiKey } from '../../../services/api-keys.ts';
import { findDeviceFolder } from '../../../services/resources/device-folders.ts';
import { actorOf } from '../../../http/access.ts';
import { orBadRequest, Params, rhizoTimestampOf } from './forms.ts';
import { allPages } from '../../../store/page.ts';
import type { RhizoOptions } from './plugin.ts';
import { asController } from './controllers.ts';

/**
 * rhizo's keys are fleetd API keys: a controller key is a device key of the controller's device,
 * a user key a key acting for that user. rhizo answers 400 for an unknown key or controller.
 */

const KeyParams = Type.Object({ keyId: Type.String({ minLength: 1, maxLength: 100 }) });

export async function keyRoutes(app: FastifyInstance, { services, bodyLimit }: RhizoOptions): Promise<void> {
  const { apiKeys, resources, store } = services;

  /** rhizo's `key_part` showed the ends of the key; fleetd's prefix is what identifies a key without giving it away. */
  const keyDict = async (key: ApiKey, controllerId?: string) => ({
    id: key.id,
    organization_id: key.orgId,
    access_as_user_id: key.userId,
    access_as_controller_id: controllerId ?? (key.deviceId === null ? null : ((await findDeviceFolder(store.db, key.deviceId))?.id ?? null)),
    creation_timestamp: rhizoTimestampOf(key.createdAt),
    revocation_timestamp: key.revokedAt === null ? null : rhizoTimestampOf(key.revokedAt),
    key_part: `fk_${key.prefix}`,
  });

  /** Keys are people's business in rhizo and in fleetd: a controller neither sees nor makes them. */
  const person = (request: FastifyRequest) => {
    const actor = actorOf(request);
    if (actor.principal.kind === 'device') throw forbidden('Keys are managed by people, not controllers');
    return actor;
  };

  const controller = (p: Parameters<typeof resources.byId>[0], id: string) => orBadRequest(async () => asController(await resources.byId(p, id, 'write')), 'Unknown controller');

  app.post('/api/v1/keys', { config: { access: { actions: ['apikey.manage'] } } }, async (request) => {
    const actor = person(request);
    if (actor.principal.kind !== 'user') throw forbidden('Keys are made by people who are logged in, not by other keys');
    const params = await Params.of(request, bodyLimit);
    const controllerId = params.string('access_as_controller_id');
    if (controllerId !== undefined) {
      const folder = await controller(actor.principal, controllerId);
      const key = await apiKeys.create(actor, folder.orgId, { name: `rhizo controller ${folder.path}`.slice(0, 200), deviceId: folder.deviceId });
      return { status: 'ok', id: key.id, secret_key: key.key };
    }
    const userId = params.string('access_as_user_id');
    if (userId === undefined) throw badRequest('access_as_controller_id or access_as_user_id is required');
    authorize(actor.principal, 'user.list');
    const orgId = params.required('organization_id');
    const key = await orBadRequest(() => apiKeys.create(actor, orgId, { name: 'rhizo user key', userId }), 'Unknown user or organization');
    return { status: 'ok', id: key.id, secret_key: key.key };
  });

  app.get('/api/v1/keys', { config: { access: { actions: ['apikey.read'] } } }, async (request) => {
    const p = person(request).principal;
    const params = await Params.of(request, bodyLimit);
    const controllerId = params.string('access_as_controller_id');
    if (controllerId !== undefined) {
      const folder = await controller(p, controllerId);
      const keys = (await allPages((page) => apiKeys.list(p, folder.orgId, {}, page))).filter((key) => key.deviceId === folder.deviceId);
      return Object.fromEntries(await Promise.all(keys.map(async (key) => [key.id, await keyDict(key, folder.id)] as const)));
    }
    if (!isSystemAdmin(p)) throw forbidden('Only system admins list every key');
    const orgs = await store.db.selectFrom('organizations').select('id').execute();
    const keys = (await Promise.all(orgs.map((org) => allPages((page) => apiKeys.list(p, org.id, {}, page))))).flat();
    return Object.fromEntries(await Promise.all(keys.map(async (key) => [key.id, await keyDict(key)] as const)));
  });

  app.delete<{ Params: { keyId: string } }>('/api/v1/keys/:keyId', { config: { access: { actions: ['apikey.manage'] } }, schema: { params: KeyParams } }, async (request) => {
    const actor = person(request);
    const row = await store.db.selectFrom('api_keys').select(['org_id', 'device_id']).where('id', '=', request.params.keyId).executeTakeFirst();
    if (!row) throw badRequest('Unknown key');
    // rhizo lets whoever may write the controller revoke its keys; fleetd's key rules decide here.
    await orBadRequest(() => apiKeys.revoke(actor, row.org_id, request.params.keyId), 'Unknown key');
    return { status: 'ok' };
  });
}
