package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

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
	c := e.cur.Load()
	now, err := statFile(e.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s was deleted (the old file is still open here; no other process sees it)", store.ErrMoved, e.path)
	case err != nil:
		return fmt.Errorf("%w: %s: %v", store.ErrFault, e.path, err)
	case now != c.file:
		return fmt.Errorf("%w: %s was replaced by another file", store.ErrMoved, e.path)
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
	if _, err := prepareFile(e.path, false); err != nil {
		return err
	}
	// The old file's connections close first: the last one folds the old
	// WAL into the old file and removes DB-wal and DB-shm, which SQLite
	// would otherwise read as the new file's (and corrupt it). Meanwhile,
	// and until an opening succeeds, the engine's calls fail.
	old := e.cur.Load()
	_ = old.close()
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
	e.cur.Store(c)
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
