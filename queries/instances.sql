-- name: InsertInstance :exec
INSERT INTO instances (tenant_id, id, process, server_id, memory_mb, desired_state, mode, generation, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?);

-- name: UpdateInstance :execrows
UPDATE instances
SET process = ?, server_id = ?, memory_mb = ?, desired_state = ?, mode = ?,
    generation = generation + 1, updated_at = ?
WHERE tenant_id = ? AND id = ?;

-- name: GetInstance :one
SELECT * FROM instances WHERE tenant_id = ? AND id = ?;

-- name: ListInstances :many
SELECT * FROM instances ORDER BY tenant_id, id;

-- name: ListInstancesOfTenant :many
SELECT * FROM instances WHERE tenant_id = ? ORDER BY id;

-- name: ListInstancesOnServer :many
SELECT * FROM instances WHERE server_id = ? ORDER BY tenant_id, id;

-- name: DeleteInstance :execrows
DELETE FROM instances WHERE tenant_id = ? AND id = ?;

-- name: DeleteInstancesOfTenant :execrows
DELETE FROM instances WHERE tenant_id = ?;

-- name: CountInstancesOnServer :one
SELECT COUNT(*) FROM instances WHERE server_id = ?;

-- name: RestoreInstance :exec
INSERT INTO instances (tenant_id, id, process, server_id, memory_mb, desired_state, mode, generation, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);
