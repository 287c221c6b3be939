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
    /** JSON object of capability name → boolean (shell, action, filesystem, update-progress). */
    capabilities: string;
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
    update_policy: 'no_update' | 'exact_match';
    /** The version an exact_match group's devices should run. */
    target_version: string | null;
    /** JSON object of free string keys. */
    metadata: string;
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
  /** A node of an organization's tree: folder (types 10-19), file (20), sequence (21) or app (22), as rhizo numbers them. */
  resources: {
    id: string;
    org_id: string;
    parent_id: string | null;
    name: string;
    /** Below the organization: '' for its root folder, '/a/b' below it. */
    path: string;
    type: number;
    /** The device a device (controller) folder stands for. */
    device_id: string | null;
    /** JSON object */
    system_attributes: string;
    /** JSON object */
    user_attributes: string;
    /** JSON list of [access type, principal id, level]; null inherits the parent's. */
    permissions: string | null;
    last_revision_id: string | null;
    deleted: number;
    created_at: string;
    modified_at: string;
  };
  resource_revisions: {
    id: string;
    resource_id: string;
    size: number;
    sha256: string;
    /** Small revisions are here, large ones under blob_key in blob storage. */
    data: Buffer | null;
    blob_key: string | null;
    created_by: string | null;
    created_at: string;
  };
  sequences: {
    resource_id: string;
    org_id: string;
    data_type: 'numeric' | 'text' | 'image';
    units: string | null;
    decimal_places: number | null;
    max_history: number | null;
    /** Seconds */
    max_age: number | null;
    /** Seconds */
    min_storage_interval: number;
    /** Times are milliseconds since the epoch. */
    last_stored_t: number | null;
    last_t: number | null;
    last_num: number | null;
    last_text: string | null;
    last_blob_key: string | null;
    /** JSON RrdDefinition, and the RrdState of its archives as services/series/state-encoding.ts writes it. */
    rrd: string | null;
    rrd_state: string | null;
    /** Raised by every write of the row: what a node's cached copy is checked against (services/series/sequence-heads.ts). */
    revision: number;
  };
  sequence_values: { sequence_id: string; t: number; num: number | null; text: string | null; data: Buffer | null; blob_key: string | null };
  /** A row of a round-robin archive: `t` is the end of its interval in seconds, `value` null when unknown. */
  rrd_rows: { sequence_id: string; archive: number; slot: number; t: number; value: number | null };
  folder_messages: { id: string; org_id: string; folder_id: string; type: string; parameters: string; sender_kind: string; sender_id: string; at: string };
  rrduino_profiles: {
    client_id: string;
    org_id: string;
    device_id: string;
    /** Hex SHA-256 of the pre-shared key. */
    master_key: string;
    /** JSON list of rrdtool create arguments (`--step`, `DS:...`, `RRA:...`). */
    rrd_arguments: string;
    update_template: string | null;
    created_at: string;
    updated_at: string;
  };
  provisioning_pins: { pin: number; code_hash: string; created_at: string; device_id: string | null; secret: string | null; entered_by: string | null };
  send_counters: { key: string; window_start: string; count: number };
  auth_throttle: { key: string; failures: number; window_start: string; blocked_until: string | null };
  package_signing_keys: { id: string; org_id: string; name: string; public_key: string; fingerprint: string; created_by: string; created_at: string; revoked_at: string | null };
  packages: {
    id: string;
    org_id: string;
    version: string;
    device_type: string;
    /** JSON object of string values, `requires:<key>` conditions among them. */
    metadata: string;
    size: number;
    /** Hex SHA-256 of the content; '' while uploading. */
    sha256: string;
    blob_key: string;
    /** Base64 detached Ed25519 signature of the content, and the organization key it verified with. */
    signature: string | null;
    signing_key_id: string | null;
    status: 'uploading' | 'ready';
    created_by: string;
    created_at: string;
    ready_at: string | null;
  };
  group_packages: { group_id: string; package_id: string };
  deployments: {
    id: string;
    org_id: string;
    group_id: string;
    name: string;
    target_version: string;
    status: 'scheduled' | 'running' | 'paused' | 'cancelled' | 'completed';
    /** JSON list of phases: {size?: number, percent?: number, startAt?: ISO} */
    phases: string;
    /** JSON {days?: number[] (0 = Sunday), start: 'HH:MM', end: 'HH:MM'} in UTC, or null */
    maintenance_window: string | null;
    /** Percent of a phase's devices that may fail before the deployment pauses itself. */
    failure_threshold: number;
    /** Index of the phase being rolled out. */
    current_phase: number;
    /** Failures of the current phase an operator accepted by resuming: they alone do not pause it again. */
    accepted_failures: number;
    paused_reason: string | null;
    start_at: string | null;
    created_by: string;
    created_at: string;
    updated_at: string;
    finished_at: string | null;
  };
  deployment_devices: {
    deployment_id: string;
    device_id: string;
    phase: number;
    status: 'scheduled' | 'pending' | 'downloading' | 'installing' | 'success' | 'failure' | 'cancelled';
    package_id: string | null;
    progress: number | null;
    reason: string | null;
    updated_at: string;
    finished_at: string | null;
  };
  device_updates: {
    device_id: string;
    org_id: string;
    package_id: string;
    target_version: string;
    deployment_id: string | null;
    status: 'pending' | 'downloading' | 'installing' | 'success' | 'failure';
    progress: number | null;
    reason: string | null;
    created_at: string;
    updated_at: string;
  };
  /** Deployment steps (device_id null) and device update reports, oldest first by id. */
  update_events: { id: string; org_id: string; deployment_id: string | null; device_id: string | null; kind: string; details: string; at: string };
  device_actions: { device_id: string; action_id: string; name: string; description: string; details: string; updated_at: string };
  action_runs: {
    id: string;
    org_id: string;
    device_id: string;
    action_id: string;
    status: 'pending' | 'sent' | 'succeeded' | 'failed' | 'timeout' | 'cancelled';
    exit_code: number | null;
    output: Buffer | null;
    error: string | null;
    requested_by_type: string;
    requested_by_id: string;
    created_at: string;
    sent_at: string | null;
    finished_at: string | null;
  };
  shell_sessions: {
    id: string;
    org_id: string;
    device_id: string;
    opened_by_type: string;
    opened_by_id: string;
    status: 'waiting' | 'attached' | 'closed';
    /** The node the operator's socket is on. */
    node: string;
    created_at: string;
    attached_at: string | null;
    closed_at: string | null;
    close_reason: string | null;
    bytes_to_device: number;
    bytes_from_device: number;
  };
  file_pulls: {
    id: string;
    org_id: string;
    device_id: string;
    path: string;
    status: 'pending' | 'uploading' | 'done' | 'failed';
    blob_key: string | null;
    size: number | null;
    sha256: string | null;
    error: string | null;
    requested_by_type: string;
    requested_by_id: string;
    created_at: string;
    finished_at: string | null;
    /** Upload URLs given for parts 1 to `parts` (devices that upload in parts); null for a whole upload. */
    parts: number | null;
  };
  device_logs: { id: string; org_id: string; device_id: string; device_timestamp: string; at: string; name: string; entry: string; created_at: string };
  /** RDFM's integer for a fleetd id, per kind of object (adapters/rdfm/ids.ts). */
  rdfm_ids: { kind: string; number: number; fleetd_id: string };
}
