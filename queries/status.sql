-- name: UpsertInstanceStatus :exec
INSERT INTO instance_status (tenant_id, instance_id, server_id, phase, health, last_error, attempts, observed_generation, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant_id, instance_id) DO UPDATE SET
    server_id = excluded.server_id,
    phase = excluded.phase,
    health = excluded.health,
    last_error = excluded.last_error,
    attempts = excluded.attempts,
    observed_generation = excluded.observed_generation,
    updated_at = excluded.updated_at;

-- name: GetInstanceStatus :one
SELECT * FROM instance_status WHERE tenant_id = ? AND instance_id = ?;

-- name: ListInstanceStatus :many
SELECT * FROM instance_status ORDER BY tenant_id, instance_id;

-- name: UpsertServerStatus :exec
INSERT INTO server_status (server_id, health, last_error, consecutive_failures, last_seen_at, instances, unmanaged, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (server_id) DO UPDATE SET
    health = excluded.health,
    last_error = excluded.last_error,
    consecutive_failures = excluded.consecutive_failures,
    last_seen_at = excluded.last_seen_at,
    instances = excluded.instances,
    unmanaged = excluded.unmanaged,
    updated_at = excluded.updated_at;

-- name: ListServerStatus :many
SELECT * FROM server_status ORDER BY server_id;

-- name: InsertEvent :exec
INSERT INTO events (at, object, reason, message) VALUES (?, ?, ?, ?);

-- name: ListEvents :many
SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?;

-- name: RecentEvents :many
SELECT * FROM events ORDER BY id DESC LIMIT ?;

-- name: TrimEvents :exec
DELETE FROM events WHERE id < ?;

-- name: MaxEventID :one
SELECT CAST(COALESCE(MAX(id), 0) AS INTEGER) FROM events;
