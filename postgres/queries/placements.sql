-- name: InsertPlacement :exec
-- An entry for a server that is gone is skipped, not an error: on
-- Postgres a failed statement would end the whole transaction.
INSERT INTO placements (server_id, name, tenant_id, instance_id, created_at)
SELECT sqlc.arg(server_id)::text, sqlc.arg(name)::text, sqlc.arg(tenant_id)::text, sqlc.arg(instance_id)::text, sqlc.arg(created_at)::bigint
WHERE EXISTS (SELECT 1 FROM servers WHERE id = sqlc.arg(server_id)::text)
ON CONFLICT (server_id, name) DO NOTHING;

-- name: DeletePlacement :exec
DELETE FROM placements WHERE server_id = $1 AND name = $2;

-- name: ListPlacements :many
SELECT * FROM placements ORDER BY server_id, name;

-- name: CountPlacementsOnServer :one
SELECT COUNT(*) FROM placements WHERE server_id = $1;

-- name: CountPlacementsByServer :many
SELECT server_id, COUNT(*) AS placed FROM placements GROUP BY server_id ORDER BY server_id;
