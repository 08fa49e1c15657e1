-- name: InsertInstance :exec
INSERT INTO instances (tenant_id, id, process, server_id, home_server_id, memory_mb, desired_state, mode, rank, generation, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?);

-- name: UpdateInstance :execrows
UPDATE instances
SET process = ?, server_id = ?, home_server_id = ?, memory_mb = ?, desired_state = ?, mode = ?, rank = ?,
    generation = generation + 1, updated_at = ?
WHERE tenant_id = ? AND id = ?;

-- name: RescheduleInstance :execrows
-- A failover move: only the current server changes, and only if nothing
-- changed the instance since the controller planned it.
UPDATE instances
SET server_id = sqlc.arg(to_server), generation = generation + 1, updated_at = sqlc.arg(updated_at)
WHERE tenant_id = sqlc.arg(tenant_id) AND id = sqlc.arg(id)
  AND server_id = sqlc.arg(from_server) AND generation = sqlc.arg(generation);

-- name: GetInstance :one
SELECT * FROM instances WHERE tenant_id = ? AND id = ?;

-- name: ListInstances :many
SELECT * FROM instances ORDER BY tenant_id, id;

-- name: ListInstancesOfTenant :many
SELECT * FROM instances WHERE tenant_id = ? ORDER BY id;

-- name: NextRank :one
SELECT CAST(COALESCE(MAX(rank) + 1, 0) AS INTEGER) FROM instances WHERE tenant_id = ?;

-- name: ListInstancesOnServer :many
SELECT * FROM instances WHERE server_id = ? ORDER BY tenant_id, id;

-- name: DeleteInstance :execrows
DELETE FROM instances WHERE tenant_id = ? AND id = ?;

-- name: DeleteInstancesOfTenant :execrows
DELETE FROM instances WHERE tenant_id = ?;

-- name: CountInstancesOnServer :one
SELECT COUNT(*) FROM instances WHERE server_id = ?;

-- name: ClearHomeServer :exec
-- A removed server is nobody's home any more.
UPDATE instances SET home_server_id = server_id WHERE home_server_id = ?;

-- name: RestoreInstance :exec
INSERT INTO instances (tenant_id, id, process, server_id, home_server_id, memory_mb, desired_state, mode, rank, generation, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);
