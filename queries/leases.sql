-- name: InsertLease :execrows
INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO NOTHING;

-- name: ClaimLease :execrows
-- Renews the caller's lease, or takes one that expired or whose holder is
-- known to be dead.
UPDATE leases SET holder = sqlc.arg(holder), expires_at = sqlc.arg(expires_at)
WHERE name = sqlc.arg(name)
  AND (holder = sqlc.arg(holder) OR holder = sqlc.arg(dead_holder) OR expires_at < sqlc.arg(now));

-- name: GetLease :one
SELECT * FROM leases WHERE name = ?;

-- name: ReleaseLease :exec
DELETE FROM leases WHERE name = ? AND holder = ?;
