-- Controllers: every running 'slum run' on the fleet, leading or standing
-- by, so that status can name the standbys and how long since the leader
-- renewed its lease. Each writes seen_at (the database's clock, in
-- milliseconds since the epoch) every time it takes, renews or tries to
-- take the controller lease; a row left by a controller that stopped
-- without a word ages out.
CREATE TABLE controllers (
    holder     TEXT    NOT NULL PRIMARY KEY,
    started_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL
);
