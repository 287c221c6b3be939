import { createPublicKey, type KeyObject } from 'node:crypto';
import { authorize, type Principal } from '../../core/access.ts';
import { conflict, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { parseSigningKey } from '../../core/package-signature.ts';
import { nowIso, paginate, type Page, type PageRequest } from '../../store/page.ts';
import type { Database } from '../../store/schema.ts';
import type { Db, Store } from '../../store/store.ts';
import { actorRef, type Actor } from '../actor.ts';
import { recordAudit } from '../audit.ts';
import type { Organizations } from '../organizations.ts';

/** An Ed25519 public key an organization's packages may be signed with. */
export interface PackageSigningKey {
  id: string;
  orgId: string;
  name: string;
  /** PEM SubjectPublicKeyInfo. */
  publicKey: string;
  fingerprint: string;
  createdBy: string;
  createdAt: string;
  /** From then on it verifies no new upload; packages it verified before keep their signature. */
  revokedAt: string | null;
}

/** Active keys an organization may hold: every signed upload is tried against each. */
const maxActiveSigningKeys = 50;

type KeyRow = Database['package_signing_keys'];

const toSigningKey = (row: KeyRow): PackageSigningKey => ({
  id: row.id,
  orgId: row.org_id,
  name: row.name,
  publicKey: row.public_key,
  fingerprint: row.fingerprint,
  createdBy: row.created_by,
  createdAt: row.created_at,
  revokedAt: row.revoked_at,
});

export class SigningKeys {
  constructor(
    private readonly store: Store,
    private readonly organizations: Organizations,
  ) {}

  async list(principal: Principal, orgIdOrSlug: string, page: PageRequest): Promise<Page<PackageSigningKey>> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(principal, 'package.read', { orgId: org.id });
    const result = await paginate(this.store.db.selectFrom('package_signing_keys').selectAll().where('org_id', '=', org.id), 'id', page);
    return { items: result.items.map(toSigningKey), nextCursor: result.nextCursor };
  }

  async add(actor: Actor, orgIdOrSlug: string, input: { name: string; publicKey: string }): Promise<PackageSigningKey> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'package.manage', { orgId: org.id });
    const parsed = parseSigningKey(input.publicKey);
    const row: KeyRow = {
      id: newId('psk'),
      org_id: org.id,
      name: input.name,
      public_key: parsed.pem,
      fingerprint: parsed.fingerprint,
      created_by: actorRef(actor.principal).id,
      created_at: nowIso(),
      revoked_at: null,
    };
    await this.store.transaction(async (tx) => {
      const active = await activeRows(tx, org.id);
      if (active.some((key) => key.fingerprint === row.fingerprint)) throw conflict('The organization has this key already', { fingerprint: row.fingerprint });
      if (active.length >= maxActiveSigningKeys) throw conflict(`An organization may hold at most ${maxActiveSigningKeys} active signing keys; revoke one first`);
      await tx.insertInto('package_signing_keys').values(row).execute();
      await recordAudit(tx, actor, { orgId: org.id, action: 'signing_key.add', target: { type: 'signing_key', id: row.id }, details: { name: row.name, fingerprint: row.fingerprint } });
    });
    return toSigningKey(row);
  }

  /** Revokes a key; revoking a revoked key again changes nothing. */
  async revoke(actor: Actor, orgIdOrSlug: string, keyId: string): Promise<void> {
    const org = await this.organizations.resolve(orgIdOrSlug);
    authorize(actor.principal, 'package.manage', { orgId: org.id });
    await this.store.transaction(async (tx) => {
      const row = await tx.selectFrom('package_signing_keys').selectAll().where('org_id', '=', org.id).where('id', '=', keyId).executeTakeFirst();
      if (!row) throw notFound('Signing key');
      if (row.revoked_at !== null) return;
      await tx.updateTable('package_signing_keys').set({ revoked_at: nowIso() }).where('id', '=', keyId).execute();
      await recordAudit(tx, actor, { orgId: org.id, action: 'signing_key.revoke', target: { type: 'signing_key', id: keyId }, details: { name: row.name, fingerprint: row.fingerprint } });
    });
  }

  /** The organization's keys that verify uploads now (no authorization: for the upload itself). */
  async active(orgId: string): Promise<Array<{ id: string; key: KeyObject }>> {
    const rows = await activeRows(this.store.db, orgId);
    return rows.map((row) => ({ id: row.id, key: createPublicKey(row.public_key) }));
  }
}

const activeRows = (db: Db, orgId: string) => db.selectFrom('package_signing_keys').selectAll().where('org_id', '=', orgId).where('revoked_at', 'is', null).execute();
