-- name: InsertAPIToken :one
INSERT INTO api_tokens (name, role, digest, created_at) VALUES ($1, $2, $3, $4)
RETURNING *;

-- name: GetAPITokenByDigest :one
SELECT * FROM api_tokens WHERE digest = $1;

-- name: GetAPIToken :one
SELECT * FROM api_tokens WHERE id = $1;

-- name: ListAPITokens :many
SELECT * FROM api_tokens ORDER BY id;

-- name: RevokeAPIToken :execrows
UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0;
