-- name: InsertRollout :one
INSERT INTO rollouts (spec, state, steps, message, runner, heartbeat_at, created_at, updated_at)
VALUES (?, 'running', ?, '', ?, ?, ?, ?)
RETURNING id;

-- name: GetRollout :one
SELECT * FROM rollouts WHERE id = ?;

-- name: ListRecentRollouts :many
SELECT * FROM rollouts ORDER BY id DESC LIMIT ?;

-- name: ListRunningRollouts :many
SELECT * FROM rollouts WHERE state = 'running' ORDER BY id;

-- name: ClaimRollout :execrows
UPDATE rollouts SET runner = ?, heartbeat_at = ?, updated_at = ?
WHERE id = ? AND state = 'running' AND (runner = '' OR heartbeat_at < ?);

-- name: SaveRollout :execrows
UPDATE rollouts SET state = ?, steps = ?, message = ?, heartbeat_at = ?, updated_at = ?
WHERE id = ? AND runner = ? AND state = 'running';

-- name: AbandonRollout :execrows
UPDATE rollouts SET state = 'abandoned', message = ?, runner = '', updated_at = ?
WHERE id = ? AND state = 'running';

-- name: ReleaseRollout :execrows
UPDATE rollouts SET steps = ?, runner = '', updated_at = ?
WHERE id = ? AND runner = ? AND state = 'running';
