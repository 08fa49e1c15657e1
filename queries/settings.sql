-- name: GetSettings :one
SELECT * FROM fleet_settings WHERE id = 1;

-- name: UpdateSettings :exec
UPDATE fleet_settings
SET probe_interval_ms = ?, probe_timeout_ms = ?, dead_after = ?, partition_fraction = ?, failover_rate = ?,
    stable_after_ms = ?, failback = ?, failback_after_ms = ?, rebalance = ?, rebalance_every_ms = ?, updated_at = ?
WHERE id = 1;
