-- name: InsertLease :execrows
INSERT INTO leases (name, holder, expires_at, epoch) VALUES ($1, $2, $3, 1)
ON CONFLICT (name) DO NOTHING;

-- name: ClaimLease :execrows
-- Renews the caller's lease, or takes one that expired or whose holder is
-- known to be dead. A change of holder starts a new epoch.
UPDATE leases
SET epoch = CASE WHEN holder = sqlc.arg(holder) THEN epoch ELSE epoch + 1 END,
    holder = sqlc.arg(holder), expires_at = sqlc.arg(expires_at)
WHERE name = sqlc.arg(name)
  AND (holder = sqlc.arg(holder) OR holder = sqlc.arg(dead_holder) OR expires_at < sqlc.arg(now));

-- name: GetLease :one
SELECT * FROM leases WHERE name = $1;

-- name: ReleaseLease :exec
DELETE FROM leases WHERE name = $1 AND holder = $2 AND epoch = $3;

-- name: CheckFence :one
-- Counts 1 when the named lease is still held by holder at epoch.
SELECT COUNT(*) FROM leases WHERE name = $1 AND holder = $2 AND epoch = $3;
