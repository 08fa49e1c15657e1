-- slum's schema on Postgres: the same tables, columns (in the same order),
-- constraints, indexes and change log as SQLite's migrations 0001-0006
-- leave, so that the queries of both engines hand back the same rows.
-- Times are milliseconds since the epoch (bigint), as in SQLite. Text
-- sorts by its bytes (COLLATE "C"), as SQLite sorts it, whatever the
-- database's collation: lists come out in the same order on both engines.

-- Every write transaction of slum takes this lock first (it is released
-- at commit), so writers are serialised as on SQLite: the store's checks
-- (capacity, anti-affinity, the lease's fence) read and then write, and
-- the change log's positions follow each other without gaps. Advisory
-- locks are per database; the schema's name keeps two fleets in two
-- schemas of one database apart.
CREATE FUNCTION slum_write_lock(schema_name text) RETURNS void LANGUAGE sql VOLATILE AS $$
    SELECT pg_advisory_xact_lock(1936487789, hashtext(schema_name))
$$;

-- The database's clock, which the change log's triggers and the leases
-- read: milliseconds since the epoch, now (not at the transaction's start).
CREATE FUNCTION slum_clock_ms() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint
$$;

-- Desired state: what the fleet should look like.

CREATE TABLE servers (
    id          text COLLATE "C" NOT NULL PRIMARY KEY,
    url         text COLLATE "C" NOT NULL,
    region      text COLLATE "C" NOT NULL DEFAULT '',
    capacity_mb bigint           NOT NULL CHECK (capacity_mb > 0),
    domain      text COLLATE "C" NOT NULL,
    token       text COLLATE "C" NOT NULL DEFAULT '',
    state       text COLLATE "C" NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'cordoned', 'draining')),
    created_at  bigint           NOT NULL,
    updated_at  bigint           NOT NULL
);

CREATE INDEX servers_region ON servers (region);

CREATE TABLE tenants (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    domain     text COLLATE "C" NOT NULL UNIQUE,
    region     text COLLATE "C" NOT NULL DEFAULT '',
    created_at bigint           NOT NULL,
    updated_at bigint           NOT NULL,
    -- Whether its instances move off a dead server, and whether one copy
    -- serves at a time (the others are warm spares) or all do.
    failover text COLLATE "C" NOT NULL DEFAULT 'move' CHECK (failover IN ('move', 'none')),
    serving  text COLLATE "C" NOT NULL DEFAULT 'one' CHECK (serving IN ('one', 'all'))
);

-- One desired placement of one of a tenant's instances.
CREATE TABLE instances (
    tenant_id     text COLLATE "C" NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
    id            text COLLATE "C" NOT NULL,
    process       text COLLATE "C" NOT NULL,
    server_id     text COLLATE "C" NOT NULL REFERENCES servers (id) ON DELETE RESTRICT,
    memory_mb     bigint           NOT NULL CHECK (memory_mb > 0),
    desired_state text COLLATE "C" NOT NULL DEFAULT 'running' CHECK (desired_state IN ('running', 'stopped')),
    mode          text COLLATE "C" NOT NULL DEFAULT 'always' CHECK (mode IN ('always', 'on-demand')),
    generation    bigint           NOT NULL DEFAULT 1,
    created_at    bigint           NOT NULL,
    updated_at    bigint           NOT NULL,
    -- Where it was declared; failover changes server_id only.
    home_server_id text COLLATE "C" NOT NULL DEFAULT '',
    -- The tenant's preference among its copies: the lowest rank that runs
    -- serves.
    rank bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX instances_server ON instances (server_id);
-- Anti-affinity: a tenant's instances of one process never share a server.
CREATE UNIQUE INDEX instances_affinity ON instances (tenant_id, process, server_id);

-- Observed state, written by the controller alone (no cascades). Its
-- rows are rewritten as often as the controller reports, so pages keep
-- room for the new versions (fillfactor): an update stays on its page
-- and leaves the index alone, twice as fast as one that cannot.

CREATE TABLE instance_status (
    tenant_id           text COLLATE "C" NOT NULL,
    instance_id         text COLLATE "C" NOT NULL,
    server_id           text COLLATE "C" NOT NULL DEFAULT '',
    phase               text COLLATE "C" NOT NULL DEFAULT 'pending',
    health              text COLLATE "C" NOT NULL DEFAULT '',
    last_error          text COLLATE "C" NOT NULL DEFAULT '',
    message             text COLLATE "C" NOT NULL DEFAULT '',
    attempts            bigint           NOT NULL DEFAULT 0,
    observed_generation bigint           NOT NULL DEFAULT 0,
    updated_at          bigint           NOT NULL,
    PRIMARY KEY (tenant_id, instance_id)
) WITH (fillfactor = 50);

CREATE TABLE server_status (
    server_id            text COLLATE "C" NOT NULL PRIMARY KEY,
    health               text COLLATE "C" NOT NULL DEFAULT 'unknown',
    health_since         bigint           NOT NULL DEFAULT 0,
    last_error           text COLLATE "C" NOT NULL DEFAULT '',
    consecutive_failures bigint           NOT NULL DEFAULT 0,
    last_seen_at         bigint           NOT NULL DEFAULT 0,
    -- 1: the last instance list succeeded, so instances and unmanaged are
    -- current.
    listed          bigint           NOT NULL DEFAULT 0,
    instances       bigint           NOT NULL DEFAULT 0,
    unmanaged       bigint           NOT NULL DEFAULT 0,
    pending_stops   bigint           NOT NULL DEFAULT 0,
    failover        text COLLATE "C" NOT NULL DEFAULT '',
    failover_reason text COLLATE "C" NOT NULL DEFAULT '',
    updated_at      bigint           NOT NULL
) WITH (fillfactor = 50);

-- Who serves each tenant now, as the controller decided.
CREATE TABLE tenant_status (
    tenant_id  text COLLATE "C" NOT NULL PRIMARY KEY,
    serving    text COLLATE "C" NOT NULL DEFAULT '', -- copies, preferred first: instance@server, comma-separated
    spares     text COLLATE "C" NOT NULL DEFAULT '', -- running copies that do not serve, likewise
    reason     text COLLATE "C" NOT NULL DEFAULT '', -- why nothing serves, when nothing does
    changed_at bigint           NOT NULL DEFAULT 0,  -- when serving last changed
    updated_at bigint           NOT NULL
) WITH (fillfactor = 50);

-- The ownership ledger: every tenement instance slum has asked a server to
-- run, written before the spawn is sent and removed once the stop is
-- confirmed.
CREATE TABLE placements (
    server_id   text COLLATE "C" NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    name        text COLLATE "C" NOT NULL,
    tenant_id   text COLLATE "C" NOT NULL,
    instance_id text COLLATE "C" NOT NULL,
    created_at  bigint           NOT NULL,
    PRIMARY KEY (server_id, name)
);

CREATE TABLE events (
    id      bigint           GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at      bigint           NOT NULL,
    object  text COLLATE "C" NOT NULL,
    reason  text COLLATE "C" NOT NULL,
    message text COLLATE "C" NOT NULL
);

-- Bumped by every transaction that changes desired state.
CREATE TABLE revision (
    id    bigint NOT NULL PRIMARY KEY CHECK (id = 1),
    value bigint NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);

-- Bumped by every write of observed status.
CREATE TABLE status_revision (
    id    bigint NOT NULL PRIMARY KEY CHECK (id = 1),
    value bigint NOT NULL
);
INSERT INTO status_revision (id, value) VALUES (1, 0);

-- Leases: one acting controller per fleet; the epoch grows every time the
-- lease changes hands and fences every write of the controller.
CREATE TABLE leases (
    name       text COLLATE "C" NOT NULL PRIMARY KEY,
    holder     text COLLATE "C" NOT NULL,
    expires_at bigint           NOT NULL,
    epoch      bigint           NOT NULL DEFAULT 1
);

-- Plans a safety rule held back, until the operator approves that exact
-- plan once or the plan goes away.
CREATE TABLE holds (
    id          bigint           GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind        text COLLATE "C" NOT NULL CHECK (kind IN ('mass-stop', 'partition')),
    fingerprint text COLLATE "C" NOT NULL,
    summary     text COLLATE "C" NOT NULL,
    detail      text COLLATE "C" NOT NULL, -- JSON: the withheld actions
    state       text COLLATE "C" NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'approved', 'done', 'cleared')),
    created_at  bigint           NOT NULL,
    updated_at  bigint           NOT NULL,
    approved_at bigint           NOT NULL DEFAULT 0,
    approved_by text COLLATE "C" NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX holds_open ON holds (kind, fingerprint) WHERE state IN ('held', 'approved');

-- The fleet's failure detection and failover settings.
CREATE TABLE fleet_settings (
    id                 bigint           NOT NULL PRIMARY KEY CHECK (id = 1),
    probe_interval_ms  bigint           NOT NULL DEFAULT 1000,
    probe_timeout_ms   bigint           NOT NULL DEFAULT 800,
    dead_after         bigint           NOT NULL DEFAULT 3,
    partition_fraction double precision NOT NULL DEFAULT 0.55,
    failover_rate      bigint           NOT NULL DEFAULT 5,
    stable_after_ms    bigint           NOT NULL DEFAULT 30000,
    failback           text COLLATE "C" NOT NULL DEFAULT 'stay' CHECK (failback IN ('stay', 'return')),
    failback_after_ms  bigint           NOT NULL DEFAULT 300000,
    updated_at         bigint           NOT NULL DEFAULT 0
);
INSERT INTO fleet_settings (id) VALUES (1);

-- Instances removed from the desired state on purpose, until the
-- controller has stopped their copies.
CREATE TABLE removals (
    tenant_id   text COLLATE "C" NOT NULL,
    instance_id text COLLATE "C" NOT NULL,
    removed_at  bigint           NOT NULL,
    PRIMARY KEY (tenant_id, instance_id)
);

-- Tokens of the fleet's HTTP API, as their SHA-256 digests only. A revoked
-- token keeps its row (revoked_at > 0).
CREATE TABLE api_tokens (
    id         bigint           GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name       text COLLATE "C" NOT NULL,
    role       text COLLATE "C" NOT NULL CHECK (role IN ('admin', 'read', 'router')),
    digest     bytea            NOT NULL UNIQUE CHECK (octet_length(digest) = 32),
    created_at bigint           NOT NULL,
    revoked_at bigint           NOT NULL DEFAULT 0
);

-- The change log: which objects every commit wrote, in commit order.
-- Triggers write it, so no write path can forget to. Its positions are
-- given under the write lock, one more than the last, so they have no
-- gaps (a sequence would leave one for every rolled-back write) and
-- follow the order of commits: a reader whose next position is gone
-- (trimmed) reads everything.
CREATE TABLE change_log (
    seq  bigint           NOT NULL PRIMARY KEY,
    kind text COLLATE "C" NOT NULL, -- server, tenant, instance, settings, server_status, tenant_status, instance_status
    key  text COLLATE "C" NOT NULL, -- the object's id (an instance's: tenant:id)
    was  text COLLATE "C" NOT NULL DEFAULT '' -- an instance's server before the write, whose capacity use changed too
);

CREATE FUNCTION change_log_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM slum_write_lock(TG_TABLE_SCHEMA);
    NEW.seq := COALESCE((SELECT MAX(seq) FROM change_log), 0) + 1;
    RETURN NEW;
END
$$;
CREATE TRIGGER change_log_position BEFORE INSERT ON change_log FOR EACH ROW EXECUTE FUNCTION change_log_position();

-- At least the latest 20,000 entries are kept, trimmed every 1,000th.
CREATE FUNCTION change_log_trim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq % 1000 = 0 THEN
        DELETE FROM change_log WHERE seq <= NEW.seq - 20000;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER change_log_trim AFTER INSERT ON change_log FOR EACH ROW EXECUTE FUNCTION change_log_trim();

-- The controller's status changes are logged only while someone follows
-- the log: a reader keeps until_ms (the database's clock) in the future
-- and, when it was late to move it on, reads the whole fleet again.
CREATE TABLE change_log_readers (
    id       bigint NOT NULL PRIMARY KEY CHECK (id = 1),
    until_ms bigint NOT NULL
);
INSERT INTO change_log_readers (id, until_ms) VALUES (1, 0);

CREATE FUNCTION servers_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO change_log (kind, key) VALUES ('server', OLD.id);
    ELSE
        INSERT INTO change_log (kind, key) VALUES ('server', NEW.id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER servers_log AFTER INSERT OR UPDATE OR DELETE ON servers FOR EACH ROW EXECUTE FUNCTION servers_log();

CREATE FUNCTION tenants_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO change_log (kind, key) VALUES ('tenant', OLD.id);
    ELSE
        INSERT INTO change_log (kind, key) VALUES ('tenant', NEW.id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER tenants_log AFTER INSERT OR UPDATE OR DELETE ON tenants FOR EACH ROW EXECUTE FUNCTION tenants_log();

-- An instance's update or removal also names the server it was on, whose
-- capacity use changed.
CREATE FUNCTION instances_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO change_log (kind, key) VALUES ('instance', NEW.tenant_id || ':' || NEW.id);
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO change_log (kind, key, was) VALUES ('instance', NEW.tenant_id || ':' || NEW.id, OLD.server_id);
    ELSE
        INSERT INTO change_log (kind, key, was) VALUES ('instance', OLD.tenant_id || ':' || OLD.id, OLD.server_id);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER instances_log AFTER INSERT OR UPDATE OR DELETE ON instances FOR EACH ROW EXECUTE FUNCTION instances_log();

CREATE FUNCTION fleet_settings_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_log (kind, key) VALUES ('settings', 'fleet');
    RETURN NULL;
END
$$;
CREATE TRIGGER fleet_settings_log AFTER UPDATE ON fleet_settings FOR EACH ROW EXECUTE FUNCTION fleet_settings_log();

-- Whether a reader keeps the status changes logged now.
CREATE FUNCTION change_log_kept() RETURNS boolean LANGUAGE sql VOLATILE AS $$
    SELECT until_ms > slum_clock_ms() FROM change_log_readers WHERE id = 1
$$;

-- The status tables' triggers run once a statement (the controller writes
-- a run of status rows as one), with the rows it wrote.
CREATE FUNCTION server_status_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF change_log_kept() THEN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO change_log (kind, key) SELECT 'server_status', server_id FROM old_rows;
        ELSE
            INSERT INTO change_log (kind, key) SELECT 'server_status', server_id FROM new_rows;
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER server_status_logi AFTER INSERT ON server_status REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION server_status_log();
CREATE TRIGGER server_status_logu AFTER UPDATE ON server_status REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION server_status_log();
CREATE TRIGGER server_status_logd AFTER DELETE ON server_status REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION server_status_log();

CREATE FUNCTION tenant_status_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF change_log_kept() THEN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO change_log (kind, key) SELECT 'tenant_status', tenant_id FROM old_rows;
        ELSE
            INSERT INTO change_log (kind, key) SELECT 'tenant_status', tenant_id FROM new_rows;
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER tenant_status_logi AFTER INSERT ON tenant_status REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tenant_status_log();
CREATE TRIGGER tenant_status_logu AFTER UPDATE ON tenant_status REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION tenant_status_log();
CREATE TRIGGER tenant_status_logd AFTER DELETE ON tenant_status REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION tenant_status_log();

CREATE FUNCTION instance_status_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF change_log_kept() THEN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO change_log (kind, key) SELECT 'instance_status', tenant_id || ':' || instance_id FROM old_rows;
        ELSE
            INSERT INTO change_log (kind, key) SELECT 'instance_status', tenant_id || ':' || instance_id FROM new_rows;
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER instance_status_logi AFTER INSERT ON instance_status REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION instance_status_log();
CREATE TRIGGER instance_status_logu AFTER UPDATE ON instance_status REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION instance_status_log();
CREATE TRIGGER instance_status_logd AFTER DELETE ON instance_status REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION instance_status_log();

-- Changes travel at once: a commit that bumps a revision (every change of
-- the desired state, every status write of the controller) notifies the
-- schema's channel, "slum:" and the schema's name, with what changed. A
-- notification goes out at commit, once per transaction and payload.
CREATE FUNCTION notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('slum:' || TG_TABLE_SCHEMA, TG_ARGV[0]);
    RETURN NULL;
END
$$;
CREATE TRIGGER revision_notify AFTER UPDATE ON revision FOR EACH STATEMENT EXECUTE FUNCTION notify_change('desired');
CREATE TRIGGER status_revision_notify AFTER UPDATE ON status_revision FOR EACH STATEMENT EXECUTE FUNCTION notify_change('status');
