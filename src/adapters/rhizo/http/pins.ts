import { randomInt } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { badRequest, FleetError, forbidden } from '../../../core/errors.ts';
import { constantTimeEqual, sha256 } from '../../../core/secrets.ts';
import { nowIso } from '../../../store/page.ts';
import { isUniqueViolation } from '../../../store/store.ts';
import { actorOf } from '../../../http/access.ts';
import { Params } from './forms.ts';
import type { RhizoOptions } from './plugin.ts';
import { controllerAt } from './controllers.ts';

/**
 * rhizo's PIN provisioning: a controller without a key asks for a PIN and shows it, a person enters
 * it for a controller folder, and the controller's next poll picks up a key of its own (a fleetd
 * device key) exactly once. Only the code's hash is kept; the key waits in the row until fetched.
 */

const pinLifetimeMs = 30 * 60_000;
const codeAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const codeLength = 60;
const PinParams = Type.Object({ pin: Type.Integer({ minimum: 1000, maximum: 9999 }) });

const newCode = () => Array.from({ length: codeLength }, () => codeAlphabet[randomInt(codeAlphabet.length)]).join('');
const expired = (createdAt: string, now = Date.now()) => Date.parse(createdAt) + pinLifetimeMs <= now;
const expiredAnswer = { status: 'error', message: 'PIN has expired.' };

export async function pinRoutes(app: FastifyInstance, { services, bodyLimit }: RhizoOptions): Promise<void> {
  const { store, apiKeys, throttle } = services;

  app.post('/api/v1/pins', { config: { access: 'public' } }, async () => {
    const cutoff = new Date(Date.now() - pinLifetimeMs).toISOString();
    await store.db.deleteFrom('provisioning_pins').where('created_at', '<', cutoff).execute();
    const code = newCode();
    // 9000 PINs and a random pick: a taken one (or one taken meanwhile on another node) means another pick.
    for (let attempt = 0; attempt < 20; attempt++) {
      const pin = randomInt(1000, 10000);
      try {
        await store.db.insertInto('provisioning_pins').values({ pin, code_hash: sha256(code), created_at: nowIso(), device_id: null, secret: null, entered_by: null }).execute();
        return { status: 'ok', pin, pin_code: code };
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
      }
    }
    throw new FleetError('unavailable', 'No PIN is free right now; try again later', { retryAfter: 60 });
  });

  app.get<{ Params: { pin: number } }>('/api/v1/pins/:pin', { config: { access: 'public' }, schema: { params: PinParams } }, async (request) => {
    const params = await Params.of(request, bodyLimit);
    const throttleKey = `pin:${request.ip}`;
    await throttle.assertAllowed(throttleKey);
    const code = params.string('pin_code') ?? '';
    const row = await store.db.selectFrom('provisioning_pins').selectAll().where('pin', '=', request.params.pin).executeTakeFirst();
    if (!row || !constantTimeEqual(row.code_hash, sha256(code))) {
      await throttle.recordFailure(throttleKey);
      throw new FleetError('not_found', 'Unknown PIN or code');
    }
    if (expired(row.created_at)) return expiredAnswer;
    if (row.secret === null || row.device_id === null) return { status: 'ok' };
    // Clearing the key only if it is still there hands it to exactly one poll, on any node.
    const taken = await store.db.updateTable('provisioning_pins').set({ secret: null }).where('pin', '=', row.pin).where('secret', '=', row.secret).executeTakeFirst();
    if (Number(taken.numUpdatedRows) !== 1) return { status: 'ok' };
    const controller = await services.resources.deviceFolder(row.device_id);
    return { status: 'ok', controller_path: controller.path, secret_key: row.secret };
  });

  app.put<{ Params: { pin: number } }>('/api/v1/pins/:pin', { config: { access: { actions: ['apikey.manage'] } }, schema: { params: PinParams } }, async (request) => {
    const actor = actorOf(request);
    if (actor.principal.kind !== 'user') throw forbidden('A PIN is entered by a person who is logged in');
    const params = await Params.of(request, bodyLimit);
    const controller = await controllerAt(services, actor.principal, params.required('controller'));
    const row = await store.db.selectFrom('provisioning_pins').selectAll().where('pin', '=', request.params.pin).executeTakeFirst();
    if (!row) throw new FleetError('not_found', 'Unknown PIN');
    if (expired(row.created_at)) return expiredAnswer;
    if (row.device_id !== null) throw badRequest('This PIN has been entered already');
    const key = await apiKeys.create(actor, controller.orgId, { name: `rhizo PIN ${row.pin}`, deviceId: controller.deviceId });
    const entered = await store.db
      .updateTable('provisioning_pins')
      .set({ device_id: controller.deviceId, secret: key.key, entered_by: actor.principal.userId })
      .where('pin', '=', row.pin)
      .where('code_hash', '=', row.code_hash)
      .where('device_id', 'is', null)
      .executeTakeFirst();
    if (Number(entered.numUpdatedRows) !== 1) {
      // Someone entered it at the same moment: theirs counts, and this key is never handed out.
      await apiKeys.revoke(actor, controller.orgId, key.id);
      throw badRequest('This PIN has been entered already');
    }
    return { status: 'ok' };
  });
}
