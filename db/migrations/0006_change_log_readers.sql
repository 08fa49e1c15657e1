-- The controller's status changes are logged only while someone follows
-- the log (an API's watch): at 100,000 instances a fleet converging from
-- empty writes hundreds of thousands of status rows, and a log row each
-- doubled the cost of those writes for no reader. A reader keeps
-- until_ms (milliseconds since the epoch, SQLite's clock) in the future
-- and, when it was late to move it on, reads the whole fleet again: it
-- cannot know what changed while nothing was logged. The desired state's
-- own changes are always logged (they are few, and made by people).
CREATE TABLE change_log_readers (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    until_ms INTEGER NOT NULL
);
INSERT INTO change_log_readers (id, until_ms) VALUES (1, 0);

DROP TRIGGER server_status_logi;
DROP TRIGGER server_status_logu;
DROP TRIGGER server_status_logd;
DROP TRIGGER tenant_status_logi;
DROP TRIGGER tenant_status_logu;
DROP TRIGGER tenant_status_logd;
DROP TRIGGER instance_status_logi;
DROP TRIGGER instance_status_logu;
DROP TRIGGER instance_status_logd;

CREATE TRIGGER server_status_logi AFTER INSERT ON server_status
WHEN (SELECT until_ms FROM change_log_readers) > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
BEGIN INSERT INTO change_log (kind, key) VALUES ('server_status', NEW.server_id); END;
CREATE TRIGGER server_status_logu AFTER UPDATE ON server_status
WHEN (SELECT until_ms FROM change_log_readers) > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
BEGIN INSERT INTO change_log (kind, key) VALUES ('server_status', NEW.server_id); END;
CREATE TRIGGER server_status_logd AFTER DELETE ON server_status
WHEN (SELECT until_ms FROM change_log_readers) > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
BEGIN INSERT INTO change_log (kind, key) VALUES ('server_status', OLD.server_id); END;

CREATE TRIGGER tenant_status_logi AFTER INSERT ON tenant_status
WHEN (SELECT until_ms FROM change_log_readers) > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
BEGIN INSERT INTO change_log (kind, key) VALUES ('tenant_status', NEW.tenant_id); END;
CREATE TRIGGER tenant_status_logu AFTER UPDATE ON tenant_status
WHEN (SELECT until_ms FROM change_log_readers) > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
BEGIN INSERT INTO change_log (kind, key) VALUES ('tenant_status', NEW.tenant_id); END;
CREATE TRIGGER tenant_status_logd AFTER DELETE ON tenant_status
WHEN (SELECT until_ms FROM change_log_readers) > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
BEGIN INSERT INTO change_log (kind, key) VALUES ('tenant_status', OLD.tenant_id); END;

CREATE TRIGGER instance_status_logi AFTER INSERT ON instance_status
WHEN (SELECT until_ms FROM change_log_readers) > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
BEGIN INSERT INTO change_log (kind, key) VALUES ('instance_status', NEW.tenant_id || ':' || NEW.instance_id); END;
CREATE TRIGGER instance_status_logu AFTER UPDATE ON instance_status
WHEN (SELECT until_ms FROM change_log_readers) > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
BEGIN INSERT INTO change_log (kind, key) VALUES ('instance_status', NEW.tenant_id || ':' || NEW.instance_id); END;
CREATE TRIGGER instance_status_logd AFTER DELETE ON instance_status
WHEN (SELECT until_ms FROM change_log_readers) > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
BEGIN INSERT INTO change_log (kind, key) VALUES ('instance_status', OLD.tenant_id || ':' || OLD.instance_id); END;
