package guard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/slum-fleet/slum/replica"
)

// marker is the file the guard keeps beside the database: the lease
// generation under which this copy of the database was last made the
// newest, and of which replica.
type marker struct {
	Generation int64  `json:"generation"`
	Replica    string `json:"replica"` // replica.Location.Canonical()
}

func markerPath(db string) string { return db + ".slum-generation" }

func readMarker(db string) (marker, bool, error) {
	b, err := os.ReadFile(markerPath(db))
	if errors.Is(err, os.ErrNotExist) {
		return marker{}, false, nil
	}
	if err != nil {
		return marker{}, false, err
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil {
		// unreadable: treat the database as stale, which only costs a restore
		return marker{Generation: -1}, true, nil
	}
	return m, true, nil
}

func writeMarker(db string, m marker) error {
	b, _ := json.Marshal(m)
	tmp := markerPath(db) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, markerPath(db))
}

// freshness says whether the local database is the newest one.
type freshness int

const (
	freshMissing freshness = iota // no local database: restore
	freshCurrent                  // this copy wrote the replica last: keep it
	freshStale                    // another copy wrote since: move it aside, restore
)

// judge is the rule: the local database is current when its marker names
// this replica and the generation that last wrote it. With no marker and a
// replica no guard has written (prevDB 0), a database already there is
// kept: that is how an existing app starts under the guard.
func judge(dbExists bool, m marker, hasMarker bool, loc replica.Location, prevDB int64) freshness {
	switch {
	case !dbExists:
		return freshMissing
	case !hasMarker && prevDB == 0:
		return freshCurrent
	case hasMarker && m.Replica == loc.Canonical() && m.Generation == prevDB:
		return freshCurrent
	}
	return freshStale
}

// sidecars are the files of a database that move with it.
func sidecars(db string) []string {
	dir, base := filepath.Split(db)
	return []string{db, db + "-wal", db + "-shm", filepath.Join(dir, "."+base+"-litestream")}
}

// moveAside moves a stale database and its sidecars into a directory of
// their own beside it: never deleted, so a person can still look.
func moveAside(db string, gen int64, now time.Time) (string, error) {
	dir, base := filepath.Split(db)
	dest := filepath.Join(dir, ".slum-stale", fmt.Sprintf("%s.g%d.%s", base, gen, now.UTC().Format("20060102T150405.000000000")))
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return "", err
	}
	for _, p := range sidecars(db) {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.Rename(p, filepath.Join(dest, filepath.Base(p))); err != nil {
			return "", err
		}
	}
	return dest, nil
}

// prepareDB makes the local database the newest one, per judge, and
// records the new generation beside it.
func (s *supervisor) prepareDB(ctx context.Context) error {
	cfg, acq := s.cfg, s.acquired
	_, err := os.Stat(cfg.DB)
	dbExists := err == nil
	m, hasMarker, err := readMarker(cfg.DB)
	if err != nil {
		return fmt.Errorf("read %s: %w", markerPath(cfg.DB), err)
	}
	switch judge(dbExists, m, hasMarker, cfg.Replica, acq.PrevDBGeneration) {
	case freshCurrent:
		s.logf("database: %s is the newest (written under generation %d): kept", cfg.DB, acq.PrevDBGeneration)
	case freshStale:
		dest, err := moveAside(cfg.DB, m.Generation, time.Now())
		if err != nil {
			return fmt.Errorf("move the stale database aside: %w", err)
		}
		s.logf("database: %s is stale (it was written under generation %d; the replica under %d): moved to %s",
			cfg.DB, m.Generation, acq.PrevDBGeneration, dest)
		fallthrough
	case freshMissing:
		if err := s.restore(ctx); err != nil {
			return err
		}
	}
	return writeMarker(cfg.DB, marker{Generation: acq.Generation, Replica: cfg.Replica.Canonical()})
}

func (s *supervisor) restore(ctx context.Context) error {
	start := time.Now()
	cmd := s.cfg.Litestream.Restore()
	c, err := s.spawn.start("litestream restore", cmd)
	if err != nil {
		return fmt.Errorf("start litestream restore: %w", err)
	}
	select {
	case <-ctx.Done():
		c.kill()
		return ctx.Err()
	case <-c.done:
	}
	if c.err != nil {
		return fmt.Errorf("litestream restore: %w", c.err)
	}
	if _, err := os.Stat(s.cfg.DB); err != nil {
		s.logf("database: the replica has no database yet; the app starts with none (%s)", time.Since(start).Round(time.Millisecond))
		return nil
	}
	s.restoreTook = time.Since(start)
	s.logf("database: restored %s from the replica in %s", s.cfg.DB, s.restoreTook.Round(time.Millisecond))
	return nil
}
