import { authorize, isSystemAdmin, type Principal } from '../core/access.ts';
import { conflict, FleetError, forbidden, notFound } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { hashPassword, verifyPassword } from '../core/secrets.ts';
import type { Database } from '../store/schema.ts';
import { isUniqueViolation, type Db, type Store } from '../store/store.ts';
import { contains, nowIso, paginate, type Page, type PageRequest } from '../store/page.ts';
import type { Actor } from './actor.ts';
import { recordAudit } from './audit.ts';

export interface User {
  id: string;
  email: string;
  name: string;
  systemAdmin: boolean;
  /** Created from an external (OIDC) identity; has no password here. */
  external: boolean;
  createdAt: string;
  updatedAt: string;
}

export const toUser = (row: Database['users']): User => ({
  id: row.id,
  email: row.email,
  name: row.name,
  systemAdmin: row.system_admin === 1,
  external: row.external_subject !== null,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

export const normalizeEmail = (email: string) => email.trim().toLowerCase();

export interface NewUser {
  email: string;
  name?: string;
  password: string;
  systemAdmin?: boolean;
}

/** Inserts a user; the caller has authorized it and records the audit event. */
export async function insertUser(db: Db, input: NewUser): Promise<User> {
  const now = nowIso();
  const email = normalizeEmail(input.email);
  const row: Database['users'] = {
    id: newId('usr'),
    email,
    name: input.name ?? email.split('@')[0]!,
    password_hash: await hashPassword(input.password),
    system_admin: input.systemAdmin ? 1 : 0,
    external_subject: null,
    created_at: now,
    updated_at: now,
  };
  try {
    await db.insertInto('users').values(row).execute();
  } catch (error) {
    if (isUniqueViolation(error)) throw conflict(`A user with email ${email} exists already`);
    throw error;
  }
  return toUser(row);
}

export async function findUserByEmail(db: Db, email: string): Promise<Database['users'] | undefined> {
  return db.selectFrom('users').selectAll().where('email', '=', normalizeEmail(email)).executeTakeFirst();
}

export class Users {
  constructor(private readonly store: Store) {}

  async get(principal: Principal, id: string): Promise<User> {
    authorize(principal, 'user.read', { userId: id });
    const row = await this.store.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound('User');
    return toUser(row);
  }

  async list(principal: Principal, filter: { q?: string; systemAdmin?: boolean }, page: PageRequest): Promise<Page<User>> {
    authorize(principal, 'user.list');
    let query = this.store.db.selectFrom('users').selectAll();
    if (filter.q) {
      const q = filter.q;
      query = query.where((eb) => eb.or([contains('email', q), contains('name', q)]));
    }
    if (filter.systemAdmin !== undefined) query = query.where('system_admin', '=', filter.systemAdmin ? 1 : 0);
    const result = await paginate(query, 'id', page);
    return { items: result.items.map(toUser), nextCursor: result.nextCursor };
  }

  async create(actor: Actor, input: NewUser): Promise<User> {
    authorize(actor.principal, 'user.create');
    return this.store.transaction(async (tx) => {
      const user = await insertUser(tx, input);
      await recordAudit(tx, actor, { orgId: null, action: 'user.create', target: { type: 'user', id: user.id }, details: { email: user.email, systemAdmin: user.systemAdmin } });
      return user;
    });
  }

  /**
   * Users change their own name and password (giving the current one); system admins change anyone's,
   * and who is a system admin. A new password ends the user's other sessions.
   */
  async update(
    actor: Actor,
    id: string,
    changes: { name?: string; password?: string; currentPassword?: string; systemAdmin?: boolean },
  ): Promise<User> {
    const user = await this.get(actor.principal, id);
    const admin = isSystemAdmin(actor.principal);
    if (changes.systemAdmin !== undefined && !admin) throw forbidden('Only system admins may change who is a system admin');
    if (actor.principal.kind === 'api_key' && changes.password !== undefined) throw forbidden('An API key may not change a password');
    return this.store.transaction(async (tx) => {
      const row = (await tx.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst())!;
      if (changes.password !== undefined && !admin) {
        const ok = row.password_hash !== null && changes.currentPassword !== undefined && (await verifyPassword(row.password_hash, changes.currentPassword));
        if (!ok) throw new FleetError('validation_failed', 'currentPassword is wrong', { details: [{ field: 'currentPassword', message: 'does not match' }] });
      }
      if (changes.systemAdmin === false && user.systemAdmin) await assertAnotherSystemAdmin(tx, id);
      const values: Partial<Database['users']> = { updated_at: nowIso() };
      if (changes.name !== undefined) values.name = changes.name;
      if (changes.systemAdmin !== undefined) values.system_admin = changes.systemAdmin ? 1 : 0;
      if (changes.password !== undefined) values.password_hash = await hashPassword(changes.password);
      await tx.updateTable('users').set(values).where('id', '=', id).execute();
      if (changes.password !== undefined) {
        const current = actor.principal.kind === 'user' ? actor.principal.sessionId : undefined;
        let revoke = tx.updateTable('sessions').set({ revoked_at: nowIso() }).where('user_id', '=', id).where('revoked_at', 'is', null);
        if (current) revoke = revoke.where('id', '!=', current);
        await revoke.execute();
      }
      const details = { ...changes, password: changes.password === undefined ? undefined : 'changed', currentPassword: undefined };
      await recordAudit(tx, actor, { orgId: null, action: 'user.update', target: { type: 'user', id }, details });
      return toUser({ ...row, ...values } as Database['users']);
    });
  }

  async delete(actor: Actor, id: string): Promise<void> {
    authorize(actor.principal, 'user.delete');
    await this.store.transaction(async (tx) => {
      const row = await tx.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
      if (!row) throw notFound('User');
      if (row.system_admin === 1) await assertAnotherSystemAdmin(tx, id);
      await assertNotLastOwner(tx, id);
      await tx.deleteFrom('users').where('id', '=', id).execute();
      await recordAudit(tx, actor, { orgId: null, action: 'user.delete', target: { type: 'user', id }, details: { email: row.email } });
    });
  }
}

/*
 * The two checks below run inside the change's transaction and first lock the rows they count (a
 * no-op update holds row locks until commit). PostgreSQL reads what is committed: without the lock,
 * two of the last two admins or owners removing each other at once would each see the other remain.
 * SQLite runs one write transaction at a time, so there the lock costs nothing.
 */

async function assertAnotherSystemAdmin(db: Db, userId: string): Promise<void> {
  await db.updateTable('users').set((eb) => ({ system_admin: eb.ref('system_admin') })).where('system_admin', '=', 1).execute();
  const other = await db.selectFrom('users').select('id').where('system_admin', '=', 1).where('id', '!=', userId).executeTakeFirst();
  if (!other) throw conflict('This is the last system admin; make another one first');
}

/** Refuses to leave an organization without an owner. */
export async function assertNotLastOwner(db: Db, userId: string, orgId?: string): Promise<void> {
  let owned = db.selectFrom('memberships').select('org_id').where('user_id', '=', userId).where('role', '=', 'owner');
  if (orgId) owned = owned.where('org_id', '=', orgId);
  // In one order, so that two transactions locking several organizations cannot deadlock.
  for (const { org_id } of await owned.orderBy('org_id').execute()) {
    await db.updateTable('memberships').set((eb) => ({ role: eb.ref('role') })).where('org_id', '=', org_id).where('role', '=', 'owner').execute();
    const others = await db.selectFrom('memberships').select('user_id').where('org_id', '=', org_id).where('role', '=', 'owner').where('user_id', '!=', userId).executeTakeFirst();
    if (!others) throw conflict('This user is the last owner of an organization; make another owner first', { orgId: org_id });
  }
}
