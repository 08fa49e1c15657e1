-- name: InsertPlacement :exec
INSERT INTO placements (server_id, name, tenant_id, instance_id, created_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (server_id, name) DO NOTHING;

-- name: DeletePlacement :exec
DELETE FROM placements WHERE server_id = ? AND name = ?;

-- name: ListPlacements :many
SELECT * FROM placements ORDER BY server_id, name;

-- name: CountPlacementsOnServer :one
SELECT COUNT(*) FROM placements WHERE server_id = ?;

-- name: CountPlacementsByServer :many
SELECT server_id, COUNT(*) AS placed FROM placements GROUP BY server_id ORDER BY server_id;
