-- The change log: which objects every commit wrote, in commit order, so a
-- reader that follows the fleet (the API's watch) reads only what changed
-- since it last looked instead of the whole fleet. Triggers write it, so no
-- write path can forget to. Writers are serialised, so seq has no gaps but
-- the trimmed start: a reader whose next seq is gone reads everything.
CREATE TABLE change_log (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT    NOT NULL, -- server, tenant, instance, settings, server_status, tenant_status, instance_status
    key  TEXT    NOT NULL, -- the object's id (an instance's: tenant:id)
    was  TEXT    NOT NULL DEFAULT '' -- an instance's server before the write, whose capacity use changed too
);

-- At least the latest 20,000 entries are kept: far more than commit
-- between two looks of a reader that keeps up. Trimmed every 1,000th
-- entry, as a range at a time is cheaper than one row per write.
CREATE TRIGGER change_log_trim AFTER INSERT ON change_log WHEN NEW.seq % 1000 = 0 BEGIN
    DELETE FROM change_log WHERE seq <= NEW.seq - 20000;
END;

CREATE TRIGGER servers_logi AFTER INSERT ON servers BEGIN INSERT INTO change_log (kind, key) VALUES ('server', NEW.id); END;
CREATE TRIGGER servers_logu AFTER UPDATE ON servers BEGIN INSERT INTO change_log (kind, key) VALUES ('server', NEW.id); END;
CREATE TRIGGER servers_logd AFTER DELETE ON servers BEGIN INSERT INTO change_log (kind, key) VALUES ('server', OLD.id); END;

CREATE TRIGGER tenants_logi AFTER INSERT ON tenants BEGIN INSERT INTO change_log (kind, key) VALUES ('tenant', NEW.id); END;
CREATE TRIGGER tenants_logu AFTER UPDATE ON tenants BEGIN INSERT INTO change_log (kind, key) VALUES ('tenant', NEW.id); END;
CREATE TRIGGER tenants_logd AFTER DELETE ON tenants BEGIN INSERT INTO change_log (kind, key) VALUES ('tenant', OLD.id); END;

CREATE TRIGGER instances_logi AFTER INSERT ON instances BEGIN
    INSERT INTO change_log (kind, key) VALUES ('instance', NEW.tenant_id || ':' || NEW.id);
END;
CREATE TRIGGER instances_logu AFTER UPDATE ON instances BEGIN
    INSERT INTO change_log (kind, key, was) VALUES ('instance', NEW.tenant_id || ':' || NEW.id, OLD.server_id);
END;
CREATE TRIGGER instances_logd AFTER DELETE ON instances BEGIN
    INSERT INTO change_log (kind, key, was) VALUES ('instance', OLD.tenant_id || ':' || OLD.id, OLD.server_id);
END;

CREATE TRIGGER fleet_settings_logu AFTER UPDATE ON fleet_settings BEGIN INSERT INTO change_log (kind, key) VALUES ('settings', 'fleet'); END;

CREATE TRIGGER server_status_logi AFTER INSERT ON server_status BEGIN INSERT INTO change_log (kind, key) VALUES ('server_status', NEW.server_id); END;
CREATE TRIGGER server_status_logu AFTER UPDATE ON server_status BEGIN INSERT INTO change_log (kind, key) VALUES ('server_status', NEW.server_id); END;
CREATE TRIGGER server_status_logd AFTER DELETE ON server_status BEGIN INSERT INTO change_log (kind, key) VALUES ('server_status', OLD.server_id); END;

CREATE TRIGGER tenant_status_logi AFTER INSERT ON tenant_status BEGIN INSERT INTO change_log (kind, key) VALUES ('tenant_status', NEW.tenant_id); END;
CREATE TRIGGER tenant_status_logu AFTER UPDATE ON tenant_status BEGIN INSERT INTO change_log (kind, key) VALUES ('tenant_status', NEW.tenant_id); END;
CREATE TRIGGER tenant_status_logd AFTER DELETE ON tenant_status BEGIN INSERT INTO change_log (kind, key) VALUES ('tenant_status', OLD.tenant_id); END;

CREATE TRIGGER instance_status_logi AFTER INSERT ON instance_status BEGIN
    INSERT INTO change_log (kind, key) VALUES ('instance_status', NEW.tenant_id || ':' || NEW.instance_id);
END;
CREATE TRIGGER instance_status_logu AFTER UPDATE ON instance_status BEGIN
    INSERT INTO change_log (kind, key) VALUES ('instance_status', NEW.tenant_id || ':' || NEW.instance_id);
END;
CREATE TRIGGER instance_status_logd AFTER DELETE ON instance_status BEGIN
    INSERT INTO change_log (kind, key) VALUES ('instance_status', OLD.tenant_id || ':' || OLD.instance_id);
END;
