-- name: ListChangesSince :many
SELECT * FROM change_log WHERE seq > sqlc.arg(seq) ORDER BY seq LIMIT sqlc.arg('limit')::bigint;

-- name: LatestChangeSeq :one
SELECT COALESCE(MAX(seq), 0)::bigint FROM change_log;

-- name: GetServerStatus :one
SELECT * FROM server_status WHERE server_id = $1;

-- name: KeepChangeLog :one
-- Keeps the status changes logged for another ms milliseconds (never
-- shortening another reader's time) and returns until when they are.
UPDATE change_log_readers
SET until_ms = GREATEST(until_ms, slum_clock_ms() + sqlc.arg(ms)::bigint)
WHERE id = 1
RETURNING until_ms;

-- name: ClockMS :one
-- The database's clock, which the change log's triggers read:
-- milliseconds since the epoch.
SELECT slum_clock_ms()::bigint;
