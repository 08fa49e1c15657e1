-- name: BumpRevision :exec
UPDATE revision SET value = value + 1 WHERE id = 1;

-- name: GetRevision :one
SELECT value FROM revision WHERE id = 1;
