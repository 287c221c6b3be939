import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { constantTimeEqual, sha256 } from '../../core/secrets.ts';
import type { Database } from '../../store/schema.ts';
import type { Db } from '../../store/store.ts';
import { nowIso } from '../../store/page.ts';

export interface EnrollmentToken {
  id: string;
  orgId: string;
  name: string;
  /** The non-secret part of the token (`fe_<prefix>_...`), to recognize it in lists. */
  prefix: string;
  /** Tags every device it admits starts with. */
  tags: string[];
  expiresAt: string | null;
  /** How many devices it may admit; null for no limit. */
  maxUses: number | null;
  uses: number;
  createdBy: string;
  createdAt: string;
  revokedAt: string | null;
}

type TokenRow = Database['enrollment_tokens'];

export const toEnrollmentToken = (row: TokenRow): EnrollmentToken => ({
  id: row.id,
  orgId: row.org_id,
  name: row.name,
  prefix: row.prefix,
  tags: JSON.parse(row.tags) as string[],
  expiresAt: row.expires_at,
  maxUses: row.max_uses,
  uses: row.uses,
  createdBy: row.created_by,
  createdAt: row.created_at,
  revokedAt: row.revoked_at,
});

const tokenPattern = /^fe_([0-9a-f]{12})_([0-9a-f]{48})$/;

/** A new token `fe_<prefix>_<secret>`: the prefix finds it, only the secret's hash is stored. */
export function newEnrollmentToken(): { token: string; prefix: string; hash: string } {
  const prefix = randomBytes(6).toString('hex');
  const secret = randomBytes(24).toString('hex');
  return { token: `fe_${prefix}_${secret}`, prefix, hash: sha256(secret) };
}

/** The token a device presented, whatever its state, or undefined when it is not one of ours. */
export async function findEnrollmentToken(db: Db, presented: string): Promise<EnrollmentToken | undefined> {
  const match = tokenPattern.exec(presented);
  if (!match) return undefined;
  const row = await db.selectFrom('enrollment_tokens').selectAll().where('prefix', '=', match[1]!).executeTakeFirst();
  if (!row || !constantTimeEqual(row.token_hash, sha256(match[2]!))) return undefined;
  return toEnrollmentToken(row);
}

/** Why the token may not admit a device now, or undefined when it may. */
export function tokenRefusal(token: EnrollmentToken, now = Date.now()): string | undefined {
  if (token.revokedAt !== null) return 'The enrollment token was revoked';
  if (token.expiresAt !== null && Date.parse(token.expiresAt) <= now) return 'The enrollment token has expired';
  if (token.maxUses !== null && token.uses >= token.maxUses) return 'The enrollment token has been used up';
  return undefined;
}

/**
 * Takes one use of the token, in the transaction that admits the device: one conditional update, so
 * that of two devices racing for the last use only one gets it (the other finds no row to update).
 */
export async function takeTokenUse(tx: Db, tokenId: string, now = Date.now()): Promise<boolean> {
  const taken = await tx
    .updateTable('enrollment_tokens')
    .set({ uses: sql<number>`uses + 1` })
    .where('id', '=', tokenId)
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', nowIso(now))]))
    .where((eb) => eb.or([eb('max_uses', 'is', null), eb('uses', '<', eb.ref('max_uses'))]))
    .executeTakeFirst();
  return taken.numUpdatedRows === 1n;
}
