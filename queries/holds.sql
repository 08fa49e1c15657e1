-- name: GetOpenHold :one
SELECT * FROM holds WHERE kind = ? AND fingerprint = ? AND state IN ('held', 'approved');

-- name: InsertHold :one
INSERT INTO holds (kind, fingerprint, summary, detail, state, created_at, updated_at)
VALUES (?, ?, ?, ?, 'held', ?, ?)
RETURNING id;

-- name: TouchHold :exec
UPDATE holds SET summary = ?, detail = ?, updated_at = ? WHERE id = ?;

-- name: SetHoldState :exec
UPDATE holds SET state = ?, updated_at = ? WHERE id = ?;

-- name: ApproveHold :execrows
UPDATE holds SET state = 'approved', approved_at = ?, approved_by = ?, updated_at = ?
WHERE id = ? AND state = 'held';

-- name: GetHold :one
SELECT * FROM holds WHERE id = ?;

-- name: ListOpenHolds :many
SELECT * FROM holds WHERE state IN ('held', 'approved') ORDER BY id;

-- name: ListRecentHolds :many
SELECT * FROM holds ORDER BY id DESC LIMIT ?;
