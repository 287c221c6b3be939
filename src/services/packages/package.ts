import type { Database } from '../../store/schema.ts';

/** A stored OTA package: its content in blob storage, what it is for in the row. */
export interface Package {
  id: string;
  orgId: string;
  version: string;
  deviceType: string;
  /** Free string keys given at upload; `requires:<key>` ones are the conditions of a delta package. */
  metadata: Record<string, string>;
  size: number;
  /** Hex SHA-256 of the content. */
  sha256: string;
  /** Base64 detached Ed25519 signature over the 32 bytes of the SHA-256 digest, when signed. */
  signature: string | null;
  /** The organization signing key the signature verified with. */
  signingKeyId: string | null;
  createdBy: string;
  createdAt: string;
  /** When its content was completely stored: a package is seen only from then on. */
  readyAt: string;
}

export type PackageRow = Database['packages'];

/** Only rows with status 'ready' are packages; an upload in progress is not. */
export const toPackage = (row: PackageRow): Package => ({
  id: row.id,
  orgId: row.org_id,
  version: row.version,
  deviceType: row.device_type,
  metadata: JSON.parse(row.metadata) as Record<string, string>,
  size: row.size,
  sha256: row.sha256,
  signature: row.signature,
  signingKeyId: row.signing_key_id,
  createdBy: row.created_by,
  createdAt: row.created_at,
  readyAt: row.ready_at ?? row.created_at,
});

/** Where a package's content is kept in blob storage. */
export const packageBlobKey = (orgId: string, packageId: string) => `packages/${orgId}/${packageId}`;
