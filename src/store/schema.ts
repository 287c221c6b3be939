/**
 * The tables as the query layer sees them. Timestamps are ISO-8601 UTC text (sortable, identical on
 * SQLite and PostgreSQL); flags are integers 0/1; free-form documents are JSON text.
 */
export interface Database {
  settings: { key: string; value: string };
  organizations: { id: string; slug: string; name: string; created_at: string; updated_at: string };
  users: {
    id: string;
    email: string;
    name: string;
    password_hash: string | null;
    system_admin: number;
    /** `sub` of an external OIDC identity, for users created from an external token. */
    external_subject: string | null;
    created_at: string;
    updated_at: string;
  };
  memberships: { org_id: string; user_id: string; role: string; created_at: string; updated_at: string };
  sessions: {
    id: string;
    user_id: string;
    refresh_hash: string;
    /** The refresh token replaced by the last rotation: seeing it again means it was stolen. */
    previous_refresh_hash: string | null;
    csrf_hash: string | null;
    created_at: string;
    expires_at: string;
    last_used_at: string;
    revoked_at: string | null;
    ip: string | null;
    user_agent: string | null;
  };
  api_keys: {
    id: string;
    org_id: string;
    prefix: string;
    secret_hash: string;
    name: string;
    /** Exactly one of user_id and device_id is set. */
    user_id: string | null;
    device_id: string | null;
    role: string | null;
    created_by: string;
    created_at: string;
    expires_at: string | null;
    last_used_at: string | null;
    revoked_at: string | null;
    revoked_by: string | null;
  };
  audit_events: {
    id: string;
    org_id: string | null;
    actor_type: string;
    actor_id: string;
    action: string;
    target_type: string;
    target_id: string;
    details: string | null;
    ip: string | null;
    request_id: string | null;
    at: string;
  };
  devices: {
    id: string;
    org_id: string;
    name: string;
    model: string | null;
    firmware: string | null;
    /** JSON object of free keys. */
    metadata: string;
    last_seen_at: string | null;
    /** The node holding the device's connection; null while it is offline. */
    connected_node: string | null;
    /** JSON state documents, each with a version that counts its changes. */
    reported: string;
    reported_version: number;
    desired: string;
    desired_version: number;
    created_at: string;
    updated_at: string;
  };
  device_tags: { device_id: string; tag: string };
  auth_throttle: { key: string; failures: number; window_start: string; blocked_until: string | null };
}
