package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/mattn/go-sqlite3"
	"golang.org/x/sys/unix"

	"github.com/slum-fleet/slum/store"
)

// fileID tells one file from another at the same path.
type fileID struct{ dev, ino uint64 }

func statFile(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, nil
	}
	return fileID{dev: uint64(st.Dev), ino: st.Ino}, nil //nolint:unconvert // Dev's type differs by platform
}

// Check fails when the database cannot be used as opened: its file was
// deleted or replaced at its path (SQLite would go on writing the old
// one, which no other process sees: ErrMoved), or it cannot be written
// (read-only: a read-only mount, an immutable file; or a full disk:
// ErrFault). A few system calls, no SQLite: a controller runs it every
// second.
func (e *Engine) Check(context.Context) error {
	if e.path == ":memory:" {
		return nil
	}
	if err := e.moved(e.cur.Load()); err != nil {
		return err
	}
	for _, p := range []string{e.path, e.path + "-wal"} {
		if err := unix.Access(p, unix.W_OK); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s is read-only: %v", store.ErrFault, p, err)
		}
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(e.path, &sfs); err == nil {
		free := sfs.Bavail
		if os.Geteuid() == 0 {
			free = sfs.Bfree // root writes into the reserved blocks too
		}
		if free == 0 {
			return fmt.Errorf("%w: the disk of %s is full", store.ErrFault, e.path)
		}
	}
	return nil
}

// moved fails, wrapping store.ErrMoved, when the file c opened is no
// longer the one at the engine's path (store.ErrFault when the path
// cannot be looked at): one stat.
func (e *Engine) moved(c *conns) error {
	if e.path == ":memory:" {
		return nil
	}
	now, err := statFile(e.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s was deleted or moved away (the old file is still open in this process; no other process sees it)", store.ErrMoved, e.path)
	case err != nil:
		return fmt.Errorf("%w: %s: %v", store.ErrFault, e.path, err)
	case now != c.file:
		return fmt.Errorf("%w: %s was replaced by another file", store.ErrMoved, e.path)
	}
	return nil
}

// Reopen opens the file now at the engine's path in place of the one
// open, which it closes: a database restored or replaced at the path. The
// file must be a fleet database already (restore one file, such as
// 'sqlite3 DB .backup' writes, not its -wal beside it); nothing is
// created.
func (e *Engine) Reopen(ctx context.Context) error {
	if e.path == ":memory:" {
		return nil
	}
	e.reopen.Lock()
	defer e.reopen.Unlock()
	if e.done.Load() {
		return e.errReopening() // closed for good: nothing is opened again
	}
	old := e.cur.Load()
	if !old.isClosed() && e.moved(old) == nil {
		return nil // the file open is the one at the path (reopened already, or put back)
	}
	if _, err := prepareFile(e.path, false); err != nil {
		return err
	}
	// What is there must be a fleet before the old file is let go: one
	// that cannot be opened leaves the old one serving reads.
	if err := checkFleetFile(ctx, e.path); err != nil {
		return err
	}
	// The old file's connections close first: the last one folds the old
	// WAL into the old file and removes DB-wal and DB-shm, which SQLite
	// would otherwise read as the new file's (and corrupt it). Meanwhile,
	// and until an opening succeeds, the engine's calls fail with
	// store.ErrMoved.
	_ = old.close()
	if err := old.drained(ctx); err != nil {
		return fmt.Errorf("reopen %s: %w", e.path, err)
	}
	for p, id := range old.side {
		// SQLite leaves them when the file was renamed or deleted.
		if now, err := statFile(p); err == nil && now == id {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("reopen %s: remove the old file's %s: %w", e.path, p, err)
			}
		}
	}
	c, err := openConns(ctx, e.path, false)
	if err != nil {
		return err
	}
	e.use(c)
	return nil
}

// fault classes an error of SQLite's that says the database cannot take
// writes as it is (read-only, full, failing I/O, gone, corrupt) as
// store.ErrFault, keeping its message.
func fault(err error) error {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code {
	case sqlite3.ErrReadonly, sqlite3.ErrFull, sqlite3.ErrIoErr, sqlite3.ErrCantOpen, sqlite3.ErrCorrupt,
		sqlite3.ErrNotADB, sqlite3.ErrPerm:
		return classed{err, store.ErrFault}
	}
	return err
}

// checkFleetFile reads the schema of the file at path without writing to
// it or to its -wal and -shm (immutable: no locks, no WAL): a slum fleet,
// of a schema this build knows, or an error saying what it is.
func checkFleetFile(ctx context.Context, path string) error {
	ro, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	defer ro.Close()
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	empty, err := checkSchema(ctx, ro, ms)
	switch {
	case err != nil:
		return fmt.Errorf("open database %s: %w", path, err)
	case empty:
		return fmt.Errorf("open database %s: %w: the file holds no fleet yet", path, ErrNotExist)
	}
	return nil
}

// drainWait bounds how long Reopen waits for the old file's transactions.
const drainWait = 15 * time.Second

// drained waits until the closed pools' last connections are closed: a
// connection in use when its pool closes is closed only when its
// transaction ends, and the last to close removes DB-wal and DB-shm by
// name, which must not be the new file's by then.
func (c *conns) drained(ctx context.Context) error {
	limit := time.Now().Add(drainWait)
	for {
		open := c.sql.Stats().OpenConnections
		if c.read != c.sql {
			open += c.read.Stats().OpenConnections
		}
		if open == 0 {
			return nil
		}
		if time.Now().After(limit) {
			return fmt.Errorf("%d connections to the old file are still in use after %s", open, drainWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
