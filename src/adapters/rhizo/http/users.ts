import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { authorize } from '../../../core/access.ts';
import type { User } from '../../../services/users.ts';
import { normalizeEmail } from '../../../services/users.ts';
import { actorOf } from '../../../http/access.ts';
import { Params, rhizoTimestampOf } from './forms.ts';
import { allPages } from '../../../store/page.ts';
import type { RhizoOptions } from './plugin.ts';

/** rhizo's user records; fleetd users log in by email, which is also their rhizo user name. */

/** rhizo's roles: 0 a standard user, 2 a system admin. */
const userDict = (user: User) => ({
  id: user.id,
  user_name: user.email,
  email_address: user.email,
  full_name: user.name,
  role: user.systemAdmin ? 2 : 0,
  creation_timestamp: rhizoTimestampOf(user.createdAt),
  deleted: false,
});

const UserParams = Type.Object({ userId: Type.String({ minLength: 1, maxLength: 254 }) });

export async function userRoutes(app: FastifyInstance, { services, bodyLimit }: RhizoOptions): Promise<void> {
  const { users, store } = services;

  app.get('/api/v1/users', { config: { access: { actions: ['user.list'] } } }, async (request) => {
    const p = actorOf(request).principal;
    const all = await allPages((page) => users.list(p, {}, page));
    return Object.fromEntries(all.map((user) => [user.id, userDict(user)]));
  });

  app.get<{ Params: { userId: string } }>('/api/v1/users/:userId', { config: { access: { actions: ['user.read'] } }, schema: { params: UserParams } }, async (request) => {
    const p = actorOf(request).principal;
    const params = await Params.of(request, bodyLimit);
    if (params.flag('check_exists')) {
      // Telling whether an address has an account is for system admins: it would let anyone probe.
      authorize(p, 'user.list');
      const name = normalizeEmail(request.params.userId);
      const row = await store.db.selectFrom('users').select('id').where((eb) => eb.or([eb('email', '=', name), eb('id', '=', request.params.userId)])).executeTakeFirst();
      return { exists: row ? 1 : 0 };
    }
    return userDict(await users.get(p, request.params.userId));
  });
}
