-- name: InsertServer :exec
INSERT INTO servers (id, url, region, capacity_mb, domain, token, state, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9);

-- name: UpdateServer :execrows
UPDATE servers
SET url = $1, region = $2, capacity_mb = $3, domain = $4, token = $5, state = $6, updated_at = $7
WHERE id = $8;

-- name: GetServer :one
SELECT * FROM servers WHERE id = $1;

-- name: ListServers :many
SELECT * FROM servers ORDER BY id;

-- name: ListServersInRegion :many
SELECT * FROM servers WHERE region = $1 ORDER BY id;

-- name: DeleteServer :execrows
DELETE FROM servers WHERE id = $1;

-- name: ServerUsage :many
SELECT s.id,
       s.capacity_mb,
       COALESCE(SUM(i.memory_mb), 0)::bigint AS used_mb,
       COUNT(i.id) AS instances,
       COUNT(DISTINCT i.tenant_id) AS tenants
FROM servers s
LEFT JOIN instances i ON i.server_id = s.id
GROUP BY s.id
ORDER BY s.id;

-- name: ServerUsageOne :one
SELECT COALESCE(SUM(memory_mb), 0)::bigint AS used_mb,
       COUNT(id) AS instances,
       COUNT(DISTINCT tenant_id) AS tenants
FROM instances WHERE server_id = $1;
