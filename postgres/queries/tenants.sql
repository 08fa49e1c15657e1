-- name: InsertTenant :exec
INSERT INTO tenants (id, domain, region, failover, serving, data, replica, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9);

-- name: UpdateTenant :execrows
UPDATE tenants SET domain = $1, region = $2, failover = $3, serving = $4, data = $5, replica = $6, updated_at = $7 WHERE id = $8;

-- name: GetTenant :one
SELECT * FROM tenants WHERE id = $1;

-- name: GetTenantByDomain :one
SELECT * FROM tenants WHERE domain = $1;

-- name: ListTenants :many
SELECT * FROM tenants ORDER BY id;

-- name: ListTenantsOnServer :many
SELECT * FROM tenants
WHERE id IN (SELECT tenant_id FROM instances WHERE server_id = $1)
ORDER BY id;

-- name: DeleteTenant :execrows
DELETE FROM tenants WHERE id = $1;
