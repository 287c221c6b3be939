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
    /** The id the device calls itself by (Shelly `src`, relay channel), unique across the server. */
    external_id: string | null;
    /** PEM public key of a device that checks in with signatures. */
    public_key: string | null;
    /** Newest check-in timestamp accepted (ISO, UTC, milliseconds): an older or equal one is a replay. */
    checkin_at: string | null;
    created_at: string;
    updated_at: string;
  };
  device_tags: { device_id: string; tag: string };
  pending_devices: {
    id: string;
    /** Null until somebody says which organization the device is for; then only system admins see it. */
    org_id: string | null;
    endpoint: string;
    external_id: string;
    state: 'pending' | 'denied';
    /** JSON: what the device said of itself (its hello, model, firmware). */
    info: string;
    public_key: string | null;
    remote_address: string | null;
    attempts: number;
    first_seen_at: string;
    last_seen_at: string;
    decided_by: string | null;
    decided_at: string | null;
  };
  enrollment_tokens: {
    id: string;
    org_id: string;
    name: string;
    prefix: string;
    token_hash: string;
    /** JSON array of tags given to the devices it admits. */
    tags: string;
    expires_at: string | null;
    max_uses: number | null;
    uses: number;
    created_by: string;
    created_at: string;
    revoked_at: string | null;
  };
  device_groups: {
    id: string;
    org_id: string;
    name: string;
    description: string;
    /** JSON saved filter of a dynamic group; null for a static group. */
    filter: string | null;
    priority: number;
    created_at: string;
    updated_at: string;
  };
  device_group_members: { group_id: string; device_id: string };
  hub_events: {
    id: string;
    org_id: string | null;
    device_id: string | null;
    name: string;
    /** JSON */
    data: string;
    at: string;
  };
  /** A running node, as NodeLiveness keeps it: seen_at is its latest heartbeat, by the database's clock. */
  hub_nodes: { id: string; started_at: string; seen_at: string };
  auth_throttle: { key: string; failures: number; window_start: string; blocked_until: string | null };
}
