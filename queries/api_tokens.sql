-- name: InsertAPIToken :one
INSERT INTO api_tokens (name, role, digest, created_at) VALUES (?, ?, ?, ?)
RETURNING *;

-- name: GetAPITokenByDigest :one
SELECT * FROM api_tokens WHERE digest = ?;

-- name: GetAPIToken :one
SELECT * FROM api_tokens WHERE id = ?;

-- name: ListAPITokens :many
SELECT * FROM api_tokens ORDER BY id;

-- name: RevokeAPIToken :execrows
UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0;
