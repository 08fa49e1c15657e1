-- name: GetSettings :one
SELECT * FROM fleet_settings WHERE id = 1;

-- name: UpdateSettings :exec
UPDATE fleet_settings
SET probe_interval_ms = $1, probe_timeout_ms = $2, dead_after = $3, partition_fraction = $4, failover_rate = $5,
    stable_after_ms = $6, failback = $7, failback_after_ms = $8, rebalance = $9, rebalance_every_ms = $10, updated_at = $11
WHERE id = 1;
