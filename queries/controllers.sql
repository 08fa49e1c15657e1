-- name: BeatController :exec
-- A controller says it runs: the first beat records when it started.
INSERT INTO controllers (holder, started_at, seen_at) VALUES (sqlc.arg(holder), sqlc.arg(now), sqlc.arg(now))
ON CONFLICT (holder) DO UPDATE SET seen_at = excluded.seen_at;

-- name: ForgetControllers :exec
-- Drops the rows of controllers silent since before.
DELETE FROM controllers WHERE seen_at < sqlc.arg(before);

-- name: DeleteController :exec
DELETE FROM controllers WHERE holder = ?;

-- name: ListControllers :many
SELECT * FROM controllers ORDER BY holder;
