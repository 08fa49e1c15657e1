-- What a copy of a fleet between engines writes (store.Copy): rows as
-- they were, ids kept, and the tables emptied when a copy replaces a
-- fleet.

-- name: RestoreAPIToken :exec
INSERT INTO api_tokens (id, name, role, digest, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?);

-- name: RestoreHold :exec
INSERT INTO holds (id, kind, fingerprint, summary, detail, state, created_at, updated_at, approved_at, approved_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: RestoreEvent :exec
INSERT INTO events (id, at, object, reason, message) VALUES (?, ?, ?, ?, ?);

-- name: SetRevision :exec
UPDATE revision SET value = ? WHERE id = 1;

-- name: SetStatusRevision :exec
UPDATE status_revision SET value = ? WHERE id = 1;

-- name: ListAllHolds :many
SELECT * FROM holds ORDER BY id;

-- name: ClearPlacements :exec
DELETE FROM placements;

-- name: ClearRemovals :exec
DELETE FROM removals;

-- name: ClearInstanceStatus :exec
DELETE FROM instance_status;

-- name: ClearServerStatus :exec
DELETE FROM server_status;

-- name: ClearTenantStatus :exec
DELETE FROM tenant_status;

-- name: ClearInstances :exec
DELETE FROM instances;

-- name: ClearTenants :exec
DELETE FROM tenants;

-- name: ClearServers :exec
DELETE FROM servers;

-- name: ClearAPITokens :exec
DELETE FROM api_tokens;

-- name: ClearHolds :exec
DELETE FROM holds;

-- name: ClearEvents :exec
DELETE FROM events;
