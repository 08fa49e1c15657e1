-- name: ListChangesSince :many
SELECT * FROM change_log WHERE seq > ? ORDER BY seq LIMIT ?;

-- name: LatestChangeSeq :one
SELECT CAST(COALESCE(MAX(seq), 0) AS INTEGER) FROM change_log;

-- name: GetServerStatus :one
SELECT * FROM server_status WHERE server_id = ?;
