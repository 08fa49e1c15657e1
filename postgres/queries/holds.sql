-- name: GetOpenHold :one
SELECT * FROM holds WHERE kind = $1 AND fingerprint = $2 AND state IN ('held', 'approved');

-- name: InsertHold :one
INSERT INTO holds (kind, fingerprint, summary, detail, state, created_at, updated_at)
VALUES ($1, $2, $3, $4, 'held', $5, $6)
RETURNING id;

-- name: TouchHold :exec
UPDATE holds SET summary = $1, detail = $2, updated_at = $3 WHERE id = $4;

-- name: SetHoldState :exec
UPDATE holds SET state = $1, updated_at = $2 WHERE id = $3;

-- name: ApproveHold :execrows
UPDATE holds SET state = 'approved', approved_at = $1, approved_by = $2, updated_at = $3
WHERE id = $4 AND state = 'held';

-- name: GetHold :one
SELECT * FROM holds WHERE id = $1;

-- name: ListOpenHolds :many
SELECT * FROM holds WHERE state IN ('held', 'approved') ORDER BY id;

-- name: ListRecentHolds :many
SELECT * FROM holds ORDER BY id DESC LIMIT sqlc.arg('limit')::bigint;
