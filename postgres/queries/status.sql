-- name: UpsertInstanceStatus :exec
INSERT INTO instance_status (tenant_id, instance_id, server_id, phase, health, last_error, message, attempts, observed_generation, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (tenant_id, instance_id) DO UPDATE SET
    server_id = excluded.server_id,
    phase = excluded.phase,
    health = excluded.health,
    last_error = excluded.last_error,
    message = excluded.message,
    attempts = excluded.attempts,
    observed_generation = excluded.observed_generation,
    updated_at = excluded.updated_at;

-- name: DeleteInstanceStatus :exec
DELETE FROM instance_status WHERE tenant_id = $1 AND instance_id = $2;

-- name: GetInstanceStatus :one
SELECT * FROM instance_status WHERE tenant_id = $1 AND instance_id = $2;

-- name: ListInstanceStatus :many
SELECT * FROM instance_status ORDER BY tenant_id, instance_id;

-- name: UpsertServerStatus :exec
INSERT INTO server_status (server_id, health, health_since, last_error, consecutive_failures, last_seen_at, listed,
                           instances, unmanaged, pending_stops, failover, failover_reason, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (server_id) DO UPDATE SET
    health = excluded.health,
    health_since = excluded.health_since,
    last_error = excluded.last_error,
    consecutive_failures = excluded.consecutive_failures,
    last_seen_at = excluded.last_seen_at,
    listed = excluded.listed,
    instances = excluded.instances,
    unmanaged = excluded.unmanaged,
    pending_stops = excluded.pending_stops,
    failover = excluded.failover,
    failover_reason = excluded.failover_reason,
    updated_at = excluded.updated_at;

-- name: DeleteServerStatus :exec
DELETE FROM server_status WHERE server_id = $1;

-- name: ListServerStatus :many
SELECT * FROM server_status ORDER BY server_id;

-- name: UpsertTenantStatus :exec
INSERT INTO tenant_status (tenant_id, serving, spares, reason, changed_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (tenant_id) DO UPDATE SET
    serving = excluded.serving,
    spares = excluded.spares,
    reason = excluded.reason,
    changed_at = excluded.changed_at,
    updated_at = excluded.updated_at;

-- name: DeleteTenantStatus :exec
DELETE FROM tenant_status WHERE tenant_id = $1;

-- name: ListTenantStatus :many
SELECT * FROM tenant_status ORDER BY tenant_id;

-- name: BumpStatusRevision :exec
UPDATE status_revision SET value = value + 1 WHERE id = 1;

-- name: GetStatusRevision :one
SELECT value FROM status_revision WHERE id = 1;

-- name: InsertEvent :exec
INSERT INTO events (at, object, reason, message) VALUES ($1, $2, $3, $4);

-- name: ListEvents :many
SELECT * FROM events WHERE id > sqlc.arg(id) ORDER BY id LIMIT sqlc.arg('limit')::bigint;

-- name: RecentEvents :many
SELECT * FROM events ORDER BY id DESC LIMIT sqlc.arg('limit')::bigint;

-- name: TrimEvents :exec
DELETE FROM events WHERE id < $1;

-- name: MaxEventID :one
SELECT COALESCE(MAX(id), 0)::bigint FROM events;

-- name: GetTenantStatus :one
SELECT * FROM tenant_status WHERE tenant_id = $1;
