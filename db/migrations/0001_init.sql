-- Desired state: what the fleet should look like.

CREATE TABLE servers (
    id          TEXT    NOT NULL PRIMARY KEY,
    url         TEXT    NOT NULL,
    region      TEXT    NOT NULL DEFAULT '',
    capacity_mb INTEGER NOT NULL CHECK (capacity_mb > 0),
    domain      TEXT    NOT NULL,
    token       TEXT    NOT NULL DEFAULT '',
    state       TEXT    NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'cordoned', 'draining')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE INDEX servers_region ON servers (region);

CREATE TABLE tenants (
    id         TEXT    NOT NULL PRIMARY KEY,
    domain     TEXT    NOT NULL UNIQUE,
    region     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- One desired placement of one of a tenant's instances.
CREATE TABLE instances (
    tenant_id     TEXT    NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
    id            TEXT    NOT NULL,
    process       TEXT    NOT NULL,
    server_id     TEXT    NOT NULL REFERENCES servers (id) ON DELETE RESTRICT,
    memory_mb     INTEGER NOT NULL CHECK (memory_mb > 0),
    desired_state TEXT    NOT NULL DEFAULT 'running' CHECK (desired_state IN ('running', 'stopped')),
    mode          TEXT    NOT NULL DEFAULT 'always' CHECK (mode IN ('always', 'on-demand')),
    generation    INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX instances_server ON instances (server_id);
-- Anti-affinity: a tenant's instances of one process never share a server.
CREATE UNIQUE INDEX instances_affinity ON instances (tenant_id, process, server_id);

-- Observed state, written by the controller.

CREATE TABLE instance_status (
    tenant_id           TEXT    NOT NULL,
    instance_id         TEXT    NOT NULL,
    server_id           TEXT    NOT NULL DEFAULT '',
    phase               TEXT    NOT NULL DEFAULT 'pending',
    health              TEXT    NOT NULL DEFAULT '',
    last_error          TEXT    NOT NULL DEFAULT '',
    attempts            INTEGER NOT NULL DEFAULT 0,
    observed_generation INTEGER NOT NULL DEFAULT 0,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, instance_id),
    FOREIGN KEY (tenant_id, instance_id) REFERENCES instances (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE server_status (
    server_id            TEXT    NOT NULL PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    health               TEXT    NOT NULL DEFAULT 'unknown',
    last_error           TEXT    NOT NULL DEFAULT '',
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_seen_at         INTEGER NOT NULL DEFAULT 0,
    instances            INTEGER NOT NULL DEFAULT 0,
    unmanaged            INTEGER NOT NULL DEFAULT 0,
    updated_at           INTEGER NOT NULL
);

-- The ownership ledger: every tenement instance slum has asked a server to
-- run. It is written before the spawn is sent and removed only once the stop
-- is confirmed, so the controller stops nothing it did not place, and a
-- tenant removed from the desired state is still cleaned up.
CREATE TABLE placements (
    server_id   TEXT    NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    tenant_id   TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (server_id, name)
);

CREATE TABLE events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    object  TEXT    NOT NULL,
    reason  TEXT    NOT NULL,
    message TEXT    NOT NULL
);

-- Bumped by every transaction that changes desired state, so a running
-- controller notices a commit made by another process at once.
CREATE TABLE revision (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);
