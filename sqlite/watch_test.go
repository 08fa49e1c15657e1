package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/db"
	"github.com/slum-fleet/slum/store"
)

func TestFaultClassesWhatStopsWrites(t *testing.T) {
	for _, tc := range []struct {
		err   error
		fault bool
	}{
		{sqlite3.Error{Code: sqlite3.ErrReadonly}, true},
		{fmt.Errorf("commit: %w", sqlite3.Error{Code: sqlite3.ErrFull}), true},
		{sqlite3.Error{Code: sqlite3.ErrIoErr, ExtendedCode: sqlite3.ErrIoErrWrite}, true},
		{sqlite3.Error{Code: sqlite3.ErrCantOpen}, true},
		{sqlite3.Error{Code: sqlite3.ErrBusy}, false},
		{sqlite3.Error{Code: sqlite3.ErrConstraint}, false},
		{slum.ErrConflict, false},
	} {
		got := fault(tc.err)
		if errors.Is(got, store.ErrFault) != tc.fault || got.Error() != tc.err.Error() {
			t.Errorf("%v: %v (fault %v)", tc.err, got, errors.Is(got, store.ErrFault))
		}
	}
}

// Check tells a deleted or replaced file (which SQLite would go on
// writing unseen) and Reopen opens what is at the path now.
func TestCheckSeesTheFileDeletedOrReplaced(t *testing.T) {
	ctx := context.Background()
	e, path := engineAt(t)
	st := store.New(e)
	if err := st.Check(ctx); err != nil {
		t.Fatalf("a good file: %v", err)
	}
	_, token, err := st.CreateAPIToken(ctx, slum.RoleRead, "reader")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	if err := st.Check(ctx); !errors.Is(err, store.ErrMoved) || !strings.Contains(err.Error(), "deleted") {
		t.Fatalf("deleted: %v", err)
	}
	// A connection the pools open now (their idle ones dropped) must not
	// put a new empty database at the path.
	c := e.cur.Load()
	for _, p := range []*sql.DB{c.sql, c.read} {
		p.SetMaxIdleConns(0)
		if _, err := p.ExecContext(ctx, "SELECT 1"); err == nil {
			t.Fatal("a fresh connection opened a deleted file")
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a connection made a new file at the deleted path: %v", err)
	}
	// An API request's token check, which needs a connection now, is
	// "unavailable" (503), not an internal error.
	if _, err := st.VerifyAPIToken(ctx, token); !errors.Is(err, slum.ErrUnavailable) || errors.Is(err, slum.ErrBadToken) {
		t.Fatalf("a token check with the file deleted: %v", err)
	}
	if err := st.Reopen(ctx); !errors.Is(err, ErrNotExist) {
		t.Fatalf("reopen with no file: %v", err)
	}
	// Another fleet put in its place: seen, and reopened.
	putFleetAt(t, path, "s9")
	if err := st.Check(ctx); !errors.Is(err, store.ErrMoved) || !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("replaced: %v", err)
	}
	if err := st.Reopen(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Check(ctx); err != nil {
		t.Fatalf("after reopening: %v", err)
	}
	if _, err := st.GetServer(ctx, "s9"); err != nil {
		t.Fatalf("the reopened store does not read the new file: %v", err)
	}
}

// An immutable file (chattr +i: root ignores modes) is read-only to
// Check, and its writes are store.ErrFault.
func TestCheckSeesTheFileReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fleet.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.AddServer(ctx, slum.Server{ID: "s1", URL: "http://s1.test:8080", CapacityMB: 100}); err != nil {
		t.Fatal(err)
	}
	chattr := func(flag string) error {
		return exec.Command("chattr", flag, path, path+"-wal").Run()
	}
	if err := chattr("+i"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chattr +i (needs root and a file system with attributes): %v", err)
		}
		t.Skipf("SKIPPED: chattr +i needs root and a file system with attributes: %v", err)
	}
	defer func() { _ = chattr("-i") }()
	if err := st.Check(ctx); !errors.Is(err, store.ErrFault) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("immutable: %v", err)
	}
	_, err = st.AddServer(ctx, slum.Server{ID: "s2", URL: "http://s2.test:8080", CapacityMB: 100})
	if !errors.Is(err, store.ErrFault) {
		t.Fatalf("a write to an immutable database: %v", err)
	}
	if err := chattr("-i"); err != nil {
		t.Fatal(err)
	}
	if err := st.Check(ctx); err != nil {
		t.Fatalf("writable again: %v", err)
	}
	if _, err := st.AddServer(ctx, slum.Server{ID: "s2", URL: "http://s2.test:8080", CapacityMB: 100}); err != nil {
		t.Fatalf("a write once writable again: %v", err)
	}
}

// A full disk (a small tmpfs filled up): Check says so, a write fails with
// store.ErrFault, and both recover once there is room.
func TestCheckSeesTheDiskFull(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount a tmpfs (needs root): %v: %s", err, out)
		}
		t.Skipf("SKIPPED: mounting a small tmpfs needs root: %v: %s", err, out)
	}
	defer func() { _ = exec.Command("umount", "-l", dir).Run() }()
	path := filepath.Join(dir, "fleet.db")
	st, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	if err := st.Check(ctx); !errors.Is(err, store.ErrFault) || !strings.Contains(err.Error(), "full") {
		t.Fatalf("a full disk: %v", err)
	}
	var werr error
	for i := 0; i < 200 && werr == nil; i++ {
		_, werr = st.AddServer(ctx, slum.Server{ID: fmt.Sprintf("s%d", i), URL: fmt.Sprintf("http://s%d.test:8080", i), CapacityMB: 100})
	}
	if !errors.Is(werr, store.ErrFault) {
		t.Fatalf("writes to a full disk: %v", werr)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := st.Check(ctx); err != nil {
		t.Fatalf("room again: %v", err)
	}
	if _, err := st.AddServer(ctx, slum.Server{ID: "late", URL: "http://late.test:8080", CapacityMB: 100}); err != nil {
		t.Fatalf("a write once there is room: %v", err)
	}
}

// A write to a file deleted or replaced at the path is refused, not
// committed where nobody will see it; the file put back takes writes
// again, and Reopen opens a replacement.
func TestWritesToAMovedFileAreRefused(t *testing.T) {
	ctx := context.Background()
	e, path := engineAt(t)
	st := store.New(e)
	add := func(id string) error {
		_, err := st.AddServer(ctx, slum.Server{ID: id, URL: "http://" + id + ".test:8080", CapacityMB: 100})
		return err
	}
	if err := add("s1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	if err := add("s2"); !errors.Is(err, store.ErrMoved) || !strings.Contains(err.Error(), "deleted") || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("a write while the file is deleted: %v", err)
	}
	if err := os.Rename(path+".away", path); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetServer(ctx, "s2"); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("the refused write is in the file: %v", err)
	}
	if err := add("s3"); err != nil {
		t.Fatalf("a write once the same file is back: %v", err)
	}
	// Another fleet in its place.
	putFleetAt(t, path)
	if err := add("s4"); !errors.Is(err, store.ErrMoved) || !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("a write while the file is replaced: %v", err)
	}
	if err := st.Reopen(ctx); err != nil {
		t.Fatal(err)
	}
	if err := add("s4"); err != nil {
		t.Fatalf("a write after reopening: %v", err)
	}
	if _, err := st.GetServer(ctx, "s1"); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("the reopened store reads the old file: %v", err)
	}
}

// Reopen waits for a transaction open on the old file to end before it
// opens the new one (the old file's last connection removes DB-wal and
// DB-shm by name); that transaction's write is refused.
func TestReopenWaitsForTransactionsOnTheOldFile(t *testing.T) {
	ctx := context.Background()
	e, path := engineAt(t)
	inside, release := make(chan struct{}), make(chan struct{})
	txDone := make(chan error, 1)
	go func() {
		txDone <- e.InTx(ctx, func(q db.Querier) error {
			close(inside)
			<-release
			return q.BumpRevision(ctx)
		})
	}()
	<-inside
	putFleetAt(t, path, "s9")
	reopened := make(chan error, 1)
	go func() { reopened <- e.Reopen(ctx) }()
	select {
	case err := <-reopened:
		t.Fatalf("Reopen returned (%v) while a transaction on the old file was open", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-txDone; !errors.Is(err, store.ErrMoved) {
		t.Fatalf("the old file's transaction: %v", err)
	}
	if err := <-reopened; err != nil {
		t.Fatal(err)
	}
	if _, err := store.New(e).GetServer(ctx, "s9"); err != nil {
		t.Fatalf("the reopened engine does not read the new file: %v", err)
	}
}

// Reopen lets go of the old file only for a fleet it can open: a file
// that is not one leaves the old one answering reads; once reopened, a
// second Reopen changes nothing.
func TestReopenKeepsTheOldFileForOneItCannotOpen(t *testing.T) {
	ctx := context.Background()
	e, path := engineAt(t)
	dir := filepath.Dir(path)
	st := store.New(e)
	if _, err := st.AddServer(ctx, slum.Server{ID: "s1", URL: "http://s1.test:8080", CapacityMB: 100}); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notes, []byte("not a fleet"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(notes, path); err != nil {
		t.Fatal(err)
	}
	if err := st.Reopen(ctx); !errors.Is(err, ErrForeign) {
		t.Fatalf("reopen onto a text file: %v", err)
	}
	if _, err := st.GetServer(ctx, "s1"); err != nil {
		t.Fatalf("a read after a reopen that failed: %v", err)
	}
	putFleetAt(t, path)
	if err := st.Reopen(ctx); err != nil {
		t.Fatal(err)
	}
	opened := e.cur.Load()
	if err := st.Reopen(ctx); err != nil || e.cur.Load() != opened || opened.isClosed() {
		t.Fatalf("a second Reopen of the same file: %v (connections replaced: %v)", err, e.cur.Load() != opened)
	}
	st.Close()
	putFleetAt(t, path)
	if err := st.Reopen(ctx); err == nil || e.cur.Load() != opened {
		t.Fatalf("Reopen of a closed store: %v (connections replaced: %v)", err, e.cur.Load() != opened)
	}
}

// putFleetAt puts another fleet database, with servers of these ids, at
// path in place of what is there: a restore, as a user makes one.
func putFleetAt(t *testing.T, path string, servers ...string) {
	t.Helper()
	ctx := context.Background()
	made := path + ".new"
	other, err := Open(ctx, made)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range servers {
		if _, err := other.AddServer(ctx, slum.Server{ID: id, URL: "http://" + id + ".test:8080", CapacityMB: 100}); err != nil {
			t.Fatal(err)
		}
	}
	other.Close()
	if err := os.Rename(made, path); err != nil {
		t.Fatal(err)
	}
}

// engineAt opens a new fleet database in a directory of its own, closed
// when the test ends.
func engineAt(t *testing.T) (*Engine, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fleet.db")
	e, err := OpenEngine(context.Background(), path, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, path
}

// Refresh reopens a replaced file, and only that.
func TestRefreshReopensOnlyAReplacedFile(t *testing.T) {
	ctx := context.Background()
	e, path := engineAt(t)
	st := store.New(e)
	if reopened, err := st.Refresh(ctx); reopened || err != nil {
		t.Fatalf("a good file: %v, %v", reopened, err)
	}
	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	if reopened, err := st.Refresh(ctx); reopened || !errors.Is(err, store.ErrMoved) || !strings.Contains(err.Error(), "cannot be opened") {
		t.Fatalf("deleted: %v, %v", reopened, err)
	}
	putFleetAt(t, path, "s9")
	if reopened, err := st.Refresh(ctx); !reopened || err != nil {
		t.Fatalf("replaced: %v, %v", reopened, err)
	}
	if _, err := st.GetServer(ctx, "s9"); err != nil {
		t.Fatalf("the refreshed store does not read the new file: %v", err)
	}
}

// A single statement (Engine.Read) that cannot reach the file is
// unavailable, as a transaction's error is: a read that needs a new
// connection while the file is deleted, and one on connections a Reopen
// let go of.
func TestReadsThatCannotReachTheFileAreUnavailable(t *testing.T) {
	ctx := context.Background()
	e, path := engineAt(t)
	st := store.New(e)
	if _, err := st.AddServer(ctx, slum.Server{ID: "s1", URL: "http://s1.test:8080", CapacityMB: 100}); err != nil {
		t.Fatal(err)
	}
	old := e.cur.Load()
	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	old.sql.SetMaxIdleConns(0) // every statement opens the file anew
	_, err := st.ListServers(ctx)
	if !errors.Is(err, slum.ErrUnavailable) || !errors.Is(err, store.ErrFault) || !strings.Contains(err.Error(), "the fleet database "+path+" cannot be opened (was its file deleted or moved?)") {
		t.Fatalf("a read that opens the deleted file: %v", err)
	}
	if _, err := st.GetServer(ctx, "s1"); errors.Is(err, slum.ErrNotFound) || !errors.Is(err, slum.ErrUnavailable) {
		t.Fatalf("a lookup that opens the deleted file: %v", err)
	}
	// A read begun on the old connections, ending after Reopen let them
	// go.
	reads := e.Read()
	putFleetAt(t, path, "s9")
	if err := st.Reopen(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := reads.ListServers(ctx); !errors.Is(err, store.ErrMoved) || !strings.Contains(err.Error(), "being opened again") {
		t.Fatalf("a read on connections let go of: %v", err)
	}
	if got, err := st.ListServers(ctx); err != nil || len(got) != 1 || got[0].ID != "s9" {
		t.Fatalf("a read after the reopen: %v %v", got, err)
	}
}

// A connection opened while the file cannot be written is read-only for
// good (SQLite falls back to that when it opens): the pool lets go of it
// once a write fails on it, so writes work again once the file does.
func TestWritesRecoverFromAConnectionOpenedReadOnly(t *testing.T) {
	ctx := context.Background()
	e, path := engineAt(t)
	st := store.New(e)
	add := func(id string) error {
		_, err := st.AddServer(ctx, slum.Server{ID: id, URL: "http://" + id + ".test:8080", CapacityMB: 100})
		return err
	}
	if err := add("s1"); err != nil {
		t.Fatal(err)
	}
	chattr := func(flag string) error {
		return exec.Command("chattr", flag, path, path+"-wal").Run()
	}
	if err := chattr("+i"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chattr +i (needs root and a file system with attributes): %v", err)
		}
		t.Skipf("SKIPPED: chattr +i needs root and a file system with attributes: %v", err)
	}
	defer func() { _ = chattr("-i") }()
	// The pool's connection is let go and a new one opened, read-only,
	// while the file is immutable.
	pool := e.cur.Load().sql
	pool.SetMaxIdleConns(0)
	pool.SetMaxIdleConns(2)
	if err := add("s2"); !errors.Is(err, store.ErrFault) {
		t.Fatalf("a write to an immutable database: %v", err)
	}
	if err := chattr("-i"); err != nil {
		t.Fatal(err)
	}
	if err := add("s2"); err != nil {
		t.Fatalf("a write once writable again: %v", err)
	}
}
