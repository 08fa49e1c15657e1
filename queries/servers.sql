-- name: InsertServer :exec
INSERT INTO servers (id, url, region, capacity_mb, domain, token, state, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: UpdateServer :execrows
UPDATE servers
SET url = ?, region = ?, capacity_mb = ?, domain = ?, token = ?, state = ?, updated_at = ?
WHERE id = ?;

-- name: GetServer :one
SELECT * FROM servers WHERE id = ?;

-- name: ListServers :many
SELECT * FROM servers ORDER BY id;

-- name: ListServersInRegion :many
SELECT * FROM servers WHERE region = ? ORDER BY id;

-- name: DeleteServer :execrows
DELETE FROM servers WHERE id = ?;

-- name: ServerUsage :many
SELECT s.id,
       s.capacity_mb,
       CAST(COALESCE(SUM(i.memory_mb), 0) AS INTEGER) AS used_mb,
       COUNT(i.id) AS instances,
       COUNT(DISTINCT i.tenant_id) AS tenants
FROM servers s
LEFT JOIN instances i ON i.server_id = s.id
GROUP BY s.id
ORDER BY s.id;

-- name: ServerUsageOne :one
SELECT CAST(COALESCE(SUM(memory_mb), 0) AS INTEGER) AS used_mb,
       COUNT(id) AS instances,
       COUNT(DISTINCT tenant_id) AS tenants
FROM instances WHERE server_id = ?;
