-- Failover, fencing and the operator's approvals.

-- The lease epoch grows every time the lease changes hands. Every write the
-- controller makes checks it in the same transaction, so a controller that
-- lost its lease can write nothing (a fencing token).
ALTER TABLE leases ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;

-- Where an instance was declared: the server a fleet file or command named,
-- or where slum first placed it. Failover changes server_id only, so
-- re-applying a fleet file does not move a failed-over instance back.
ALTER TABLE instances ADD COLUMN home_server_id TEXT NOT NULL DEFAULT '';
UPDATE instances SET home_server_id = server_id;

-- A tenant's preference among its copies: with one serving copy at a time,
-- the lowest rank that runs serves. A fleet file ranks instances in the
-- order it lists them; the CLI ranks a new instance last.
ALTER TABLE instances ADD COLUMN rank INTEGER NOT NULL DEFAULT 0;

-- Per-tenant policies: whether its instances move off a dead server, and
-- whether one copy serves at a time (the others are warm spares) or all do.
ALTER TABLE tenants ADD COLUMN failover TEXT NOT NULL DEFAULT 'move' CHECK (failover IN ('move', 'none'));
ALTER TABLE tenants ADD COLUMN serving TEXT NOT NULL DEFAULT 'one' CHECK (serving IN ('one', 'all'));

-- Observed status is the controller's own: its reporter is the only writer
-- and removes rows itself (no cascade behind its back), so what it remembers
-- having written never drifts from the table.
DROP TABLE instance_status;
CREATE TABLE instance_status (
    tenant_id           TEXT    NOT NULL,
    instance_id         TEXT    NOT NULL,
    server_id           TEXT    NOT NULL DEFAULT '',
    phase               TEXT    NOT NULL DEFAULT 'pending',
    health              TEXT    NOT NULL DEFAULT '',
    last_error          TEXT    NOT NULL DEFAULT '',
    message             TEXT    NOT NULL DEFAULT '',
    attempts            INTEGER NOT NULL DEFAULT 0,
    observed_generation INTEGER NOT NULL DEFAULT 0,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, instance_id)
);

DROP TABLE server_status;
CREATE TABLE server_status (
    server_id            TEXT    NOT NULL PRIMARY KEY,
    health               TEXT    NOT NULL DEFAULT 'unknown',
    health_since         INTEGER NOT NULL DEFAULT 0,
    last_error           TEXT    NOT NULL DEFAULT '',
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_seen_at         INTEGER NOT NULL DEFAULT 0,
    -- listed: the last instance list succeeded, so instances and unmanaged
    -- are current; otherwise they are unknown.
    listed               INTEGER NOT NULL DEFAULT 0,
    instances            INTEGER NOT NULL DEFAULT 0,
    unmanaged            INTEGER NOT NULL DEFAULT 0,
    pending_stops        INTEGER NOT NULL DEFAULT 0,
    failover             TEXT    NOT NULL DEFAULT '',
    failover_reason      TEXT    NOT NULL DEFAULT '',
    updated_at           INTEGER NOT NULL
);

-- Who serves each tenant now, as the controller decided: status, the API
-- and the routers all read this, so they cannot disagree.
CREATE TABLE tenant_status (
    tenant_id  TEXT    NOT NULL PRIMARY KEY,
    serving    TEXT    NOT NULL DEFAULT '', -- copies, preferred first: instance@server, comma-separated
    spares     TEXT    NOT NULL DEFAULT '', -- running copies that do not serve, likewise
    reason     TEXT    NOT NULL DEFAULT '', -- why nothing serves, when nothing does
    changed_at INTEGER NOT NULL DEFAULT 0,  -- when serving last changed
    updated_at INTEGER NOT NULL
);

-- Bumped by every write of observed status, so routers and API watchers
-- notice it as the controller notices a desired-state commit.
CREATE TABLE status_revision (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO status_revision (id, value) VALUES (1, 0);

-- Plans a safety rule held back (a mass stop, a failover during an apparent
-- partition), with what they would do, until the operator approves that
-- exact plan once or the plan goes away.
CREATE TABLE holds (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL CHECK (kind IN ('mass-stop', 'partition')),
    fingerprint TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    detail      TEXT    NOT NULL, -- JSON: the withheld actions
    state       TEXT    NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'approved', 'done', 'cleared')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    approved_at INTEGER NOT NULL DEFAULT 0,
    approved_by TEXT    NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX holds_open ON holds (kind, fingerprint) WHERE state IN ('held', 'approved');

-- The fleet's failure detection and failover settings.
CREATE TABLE fleet_settings (
    id                 INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    probe_interval_ms  INTEGER NOT NULL DEFAULT 1000,
    probe_timeout_ms   INTEGER NOT NULL DEFAULT 800,
    dead_after         INTEGER NOT NULL DEFAULT 3,
    partition_fraction REAL    NOT NULL DEFAULT 0.55,
    failover_rate      INTEGER NOT NULL DEFAULT 5,
    stable_after_ms    INTEGER NOT NULL DEFAULT 30000,
    failback           TEXT    NOT NULL DEFAULT 'stay' CHECK (failback IN ('stay', 'return')),
    failback_after_ms  INTEGER NOT NULL DEFAULT 300000,
    updated_at         INTEGER NOT NULL DEFAULT 0
);
INSERT INTO fleet_settings (id) VALUES (1);

-- Instances removed from the desired state on purpose (a command, an
-- apply), until the controller has stopped their copies. Stopping those is
-- expected; stopping copies of instances that vanished without a trace is
-- what the mass-stop guard refuses (an emptied or wrong database).
CREATE TABLE removals (
    tenant_id   TEXT    NOT NULL,
    instance_id TEXT    NOT NULL,
    removed_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, instance_id)
);
