-- name: InsertRemoval :exec
INSERT INTO removals (tenant_id, instance_id, removed_at) VALUES ($1, $2, $3)
ON CONFLICT (tenant_id, instance_id) DO UPDATE SET removed_at = excluded.removed_at;

-- name: InsertRemovalsOfTenant :exec
INSERT INTO removals (tenant_id, instance_id, removed_at)
SELECT i.tenant_id, i.id, sqlc.arg(removed_at)::bigint FROM instances AS i WHERE i.tenant_id = sqlc.arg(tenant_id)
ON CONFLICT (tenant_id, instance_id) DO UPDATE SET removed_at = excluded.removed_at;

-- name: DeleteRemoval :exec
DELETE FROM removals WHERE tenant_id = $1 AND instance_id = $2;

-- name: ListRemovals :many
SELECT * FROM removals ORDER BY tenant_id, instance_id;

-- name: DeleteRemovalIfGone :exec
-- Drops a tombstone once no copy of the instance is left in the ledger.
DELETE FROM removals
WHERE removals.tenant_id = sqlc.arg(tenant_id) AND removals.instance_id = sqlc.arg(instance_id)
  AND NOT EXISTS (SELECT 1 FROM placements p WHERE p.tenant_id = sqlc.arg(tenant_id) AND p.instance_id = sqlc.arg(instance_id));
