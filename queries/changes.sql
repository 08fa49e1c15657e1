-- name: ListChangesSince :many
SELECT * FROM change_log WHERE seq > ? ORDER BY seq LIMIT ?;

-- name: LatestChangeSeq :one
SELECT CAST(COALESCE(MAX(seq), 0) AS INTEGER) FROM change_log;

-- name: GetServerStatus :one
SELECT * FROM server_status WHERE server_id = ?;

-- name: KeepChangeLog :one
-- Keeps the status changes logged for another ms milliseconds (never
-- shortening another reader's time) and returns until when they are.
UPDATE change_log_readers
SET until_ms = MAX(until_ms, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + CAST(sqlc.arg(ms) AS INTEGER))
WHERE id = 1
RETURNING until_ms;

-- name: ClockMS :one
-- SQLite's clock, which the change log's triggers read: milliseconds
-- since the epoch.
SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);
