-- name: InsertTenant :exec
INSERT INTO tenants (id, domain, region, failover, serving, data, replica, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: UpdateTenant :execrows
UPDATE tenants SET domain = ?, region = ?, failover = ?, serving = ?, data = ?, replica = ?, updated_at = ? WHERE id = ?;

-- name: GetTenant :one
SELECT * FROM tenants WHERE id = ?;

-- name: GetTenantByDomain :one
SELECT * FROM tenants WHERE domain = ?;

-- name: ListTenants :many
SELECT * FROM tenants ORDER BY id;

-- name: ListTenantsOnServer :many
SELECT * FROM tenants
WHERE id IN (SELECT tenant_id FROM instances WHERE server_id = ?)
ORDER BY id;

-- name: DeleteTenant :execrows
DELETE FROM tenants WHERE id = ?;
