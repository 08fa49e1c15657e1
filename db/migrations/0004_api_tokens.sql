-- Tokens of the fleet's HTTP API. Only a token's SHA-256 digest is kept:
-- the token itself is shown once, when it is made, and never stored.
-- A revoked token keeps its row (revoked_at > 0) so that lists show it.
CREATE TABLE api_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('admin', 'read', 'router')),
    digest     BLOB    NOT NULL UNIQUE CHECK (length(digest) = 32),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL DEFAULT 0
);
