-- name: InsertInstance :exec
INSERT INTO instances (tenant_id, id, process, server_id, home_server_id, memory_mb, desired_state, mode, rank, generation, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11);

-- name: UpdateInstance :execrows
UPDATE instances
SET process = $1, server_id = $2, home_server_id = $3, memory_mb = $4, desired_state = $5, mode = $6, rank = $7,
    generation = generation + 1, updated_at = $8
WHERE tenant_id = $9 AND id = $10;

-- name: RescheduleInstance :execrows
-- A failover move: only the current server changes, and only if nothing
-- changed the instance since the controller planned it.
UPDATE instances
SET server_id = sqlc.arg(to_server), generation = generation + 1, updated_at = sqlc.arg(updated_at)
WHERE tenant_id = sqlc.arg(tenant_id) AND id = sqlc.arg(id)
  AND server_id = sqlc.arg(from_server) AND generation = sqlc.arg(generation);

-- name: GetInstance :one
SELECT * FROM instances WHERE tenant_id = $1 AND id = $2;

-- name: ListInstances :many
SELECT * FROM instances ORDER BY tenant_id, id;

-- name: ListInstancesOfTenant :many
SELECT * FROM instances WHERE tenant_id = $1 ORDER BY id;

-- name: NextRank :one
SELECT COALESCE(MAX(rank) + 1, 0)::bigint FROM instances WHERE tenant_id = $1;

-- name: ListInstancesOnServer :many
SELECT * FROM instances WHERE server_id = $1 ORDER BY tenant_id, id;

-- name: DeleteInstance :execrows
DELETE FROM instances WHERE tenant_id = $1 AND id = $2;

-- name: DeleteInstancesOfTenant :execrows
DELETE FROM instances WHERE tenant_id = $1;

-- name: CountInstancesOnServer :one
SELECT COUNT(*) FROM instances WHERE server_id = $1;

-- name: ClearHomeServer :exec
-- A removed server is nobody's home any more.
UPDATE instances SET home_server_id = server_id WHERE home_server_id = $1;

-- name: RestoreInstance :exec
INSERT INTO instances (tenant_id, id, process, server_id, home_server_id, memory_mb, desired_state, mode, rank, generation, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12);
