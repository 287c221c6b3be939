import { createHash } from 'node:crypto';
import type { BlobStore } from '../../blob/blob-store.ts';
import { FleetError, notFound } from '../../core/errors.ts';
import { monotonicIds } from '../../core/ids.ts';
import { nowIso, paginate, type Page, type PageRequest } from '../../store/page.ts';
import type { Database } from '../../store/schema.ts';
import type { Db } from '../../store/store.ts';

type RevisionRow = Database['resource_revisions'];

/** One version of a file's content. */
export interface RevisionInfo {
  id: string;
  resourceId: string;
  size: number;
  /** Hex SHA-256 of the content. */
  sha256: string;
  /** Where the content is: small revisions in the database, large ones in blob storage. */
  storage: 'database' | 'blob';
  /** Who wrote it: a user, API key or device id. */
  createdBy: string | null;
  createdAt: string;
}

const toRevisionInfo = (row: Omit<RevisionRow, 'data'>): RevisionInfo => ({
  id: row.id,
  resourceId: row.resource_id,
  size: row.size,
  sha256: row.sha256,
  storage: row.blob_key === null ? 'database' : 'blob',
  createdBy: row.created_by,
  createdAt: row.created_at,
});

// Revisions list in id order, so two written by one node within a millisecond must still sort as written.
const nextRevisionId = monotonicIds('rev');

/** Where a large revision's content lives in blob storage. */
const revisionBlobKey = (orgId: string, resourceId: string, revisionId: string) => `rev/${orgId}/${resourceId}/${revisionId}`;

/**
 * Stores a revision's content: in the row when smaller than `threshold` bytes, else in blob storage
 * first, so that the row (inserted afterwards, in the caller's transaction) never names missing content.
 */
export async function prepareRevision(
  blobs: BlobStore,
  threshold: number,
  resource: { id: string; orgId: string },
  content: Buffer,
  createdBy: string | null,
): Promise<RevisionRow> {
  const id = nextRevisionId();
  const sha256 = createHash('sha256').update(content).digest('hex');
  const row: RevisionRow = { id, resource_id: resource.id, size: content.length, sha256, data: content, blob_key: null, created_by: createdBy, created_at: nowIso() };
  if (content.length < threshold) return row;
  const key = revisionBlobKey(resource.orgId, resource.id, id);
  await blobs.put(key, content);
  return { ...row, data: null, blob_key: key };
}

export async function insertRevision(db: Db, row: RevisionRow): Promise<RevisionInfo> {
  await db.insertInto('resource_revisions').values(row).execute();
  return toRevisionInfo(row);
}

export async function readRevision(db: Db, blobs: BlobStore, resourceId: string, revisionId: string): Promise<{ revision: RevisionInfo; content: Buffer }> {
  const row = await db.selectFrom('resource_revisions').selectAll().where('resource_id', '=', resourceId).where('id', '=', revisionId).executeTakeFirst();
  if (!row) throw notFound('Revision');
  const content = row.blob_key === null ? row.data : await blobs.get(row.blob_key);
  // A row whose blob is gone is damage to report, not a missing revision to hide.
  if (!content) throw new FleetError('internal', `The content of revision ${row.id} is missing from blob storage`);
  return { revision: toRevisionInfo(row), content: Buffer.from(content) };
}

export async function listRevisions(db: Db, resourceId: string, page: PageRequest): Promise<Page<RevisionInfo>> {
  const query = db
    .selectFrom('resource_revisions')
    .select(['id', 'resource_id', 'size', 'sha256', 'blob_key', 'created_by', 'created_at'])
    .where('resource_id', '=', resourceId);
  const result = await paginate(query, 'id', page);
  return { items: result.items.map(toRevisionInfo), nextCursor: result.nextCursor };
}
