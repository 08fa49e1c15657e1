-- name: InsertRollout :one
INSERT INTO rollouts (spec, state, steps, message, runner, heartbeat_at, created_at, updated_at)
VALUES ($1, 'running', $2, '', $3, $4, $5, $6)
RETURNING id;

-- name: GetRollout :one
SELECT * FROM rollouts WHERE id = $1;

-- name: ListRecentRollouts :many
SELECT * FROM rollouts ORDER BY id DESC LIMIT sqlc.arg('limit')::bigint;

-- name: ListRunningRollouts :many
SELECT * FROM rollouts WHERE state = 'running' ORDER BY id;

-- name: ClaimRollout :execrows
UPDATE rollouts SET runner = $1, heartbeat_at = $2, updated_at = $3
WHERE id = $4 AND state = 'running' AND (runner = '' OR heartbeat_at < $5);

-- name: SaveRollout :execrows
UPDATE rollouts SET state = $1, steps = $2, message = $3, heartbeat_at = $4, updated_at = $5
WHERE id = $6 AND runner = $7 AND state = 'running';

-- name: AbandonRollout :execrows
UPDATE rollouts SET state = 'abandoned', message = $1, runner = '', updated_at = $2
WHERE id = $3 AND state = 'running';

-- name: ReleaseRollout :execrows
UPDATE rollouts SET steps = $1, runner = '', updated_at = $2
WHERE id = $3 AND runner = $4 AND state = 'running';
