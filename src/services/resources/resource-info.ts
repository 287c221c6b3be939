import type { PermissionEntry } from '../../core/resource-access.ts';
import { fullPathOf, resourceTypeOf, type ResourceType } from '../../core/resource-paths.ts';
import type { Database } from '../../store/schema.ts';

export type ResourceRow = Database['resources'];

/** A resource of an organization's tree, as every adapter sees it. */
export interface ResourceInfo {
  id: string;
  orgId: string;
  /** Null for the organization's root folder. */
  parentId: string | null;
  /** The organization's slug for its root folder. */
  name: string;
  /** Full path, organization first: `/<orgSlug>/a/b`. */
  path: string;
  /** Below the organization: `/a/b`, '' for its root folder. */
  relativePath: string;
  type: ResourceType;
  /** The device a controller folder stands for. */
  deviceId: string | null;
  systemAttributes: Record<string, unknown>;
  userAttributes: Record<string, unknown>;
  /** The resource's own entries; null inherits its parent's. */
  permissions: PermissionEntry[] | null;
  lastRevisionId: string | null;
  createdAt: string;
  modifiedAt: string;
}

export const parsePermissions = (text: string | null): PermissionEntry[] | null => (text === null ? null : (JSON.parse(text) as PermissionEntry[]));

export const toResourceInfo = (row: ResourceRow, orgSlug: string): ResourceInfo => ({
  id: row.id,
  orgId: row.org_id,
  parentId: row.parent_id,
  name: row.parent_id === null ? orgSlug : row.name,
  path: fullPathOf(orgSlug, row.path),
  relativePath: row.path,
  type: resourceTypeOf(row.type),
  deviceId: row.device_id,
  systemAttributes: JSON.parse(row.system_attributes) as Record<string, unknown>,
  userAttributes: JSON.parse(row.user_attributes) as Record<string, unknown>,
  permissions: parsePermissions(row.permissions),
  lastRevisionId: row.last_revision_id,
  createdAt: row.created_at,
  modifiedAt: row.modified_at,
});
