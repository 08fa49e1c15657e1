-- Rolling restarts, resumable: the spec and each copy's step as JSON (the
-- store reads and writes them whole; nothing queries inside). runner and
-- heartbeat_at say who runs it: one runner at a time, another may take
-- over once the heartbeat is stale.
CREATE TABLE rollouts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    spec         TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('running', 'done', 'failed', 'abandoned')),
    steps        TEXT    NOT NULL,
    message      TEXT    NOT NULL DEFAULT '',
    runner       TEXT    NOT NULL DEFAULT '',
    heartbeat_at INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX rollouts_running ON rollouts (state) WHERE state = 'running';

-- Whether the controller rebalances by itself, and how often at most.
ALTER TABLE fleet_settings ADD COLUMN rebalance TEXT NOT NULL DEFAULT 'off' CHECK (rebalance IN ('off', 'on'));
ALTER TABLE fleet_settings ADD COLUMN rebalance_every_ms INTEGER NOT NULL DEFAULT 600000;
