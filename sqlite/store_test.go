package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/examples"
	"github.com/slum-fleet/slum/internal/fleettest"
	"github.com/slum-fleet/slum/store"
)

// openStore opens a new fleet database in the test's directory.
func openStore(t testing.TB) *store.Store {
	t.Helper()
	return openStoreWithClock(t, nil)
}

func openStoreWithClock(t testing.TB, now func() time.Time) *store.Store {
	t.Helper()
	e, err := OpenEngine(context.Background(), filepath.Join(t.TempDir(), "slum.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	if now == nil {
		now = time.Now
	}
	s := store.NewWithClock(e, now)
	t.Cleanup(func() { s.Close() })
	return s
}

// stored is everything the database file and its log hold.
func stored(s *store.Store) func(testing.TB) []byte {
	return func(t testing.TB) []byte {
		file, err := os.ReadFile(s.Where())
		if err != nil {
			t.Fatal(err)
		}
		wal, _ := os.ReadFile(s.Where() + "-wal")
		return append(file, wal...)
	}
}

// The SQLite store keeps the Fleet contract.
func TestFleetContract(t *testing.T) {
	fleettest.Run(t, func(t testing.TB) fleettest.Subject {
		s := openStore(t)
		return fleettest.Subject{Fleet: s, Store: s, Stored: stored(s)}
	})
}

// The SQLite store keeps the store's contract with the controller.
func TestStoreContract(t *testing.T) {
	fleettest.RunStore(t, openStoreWithClock)
}

func TestDatabaseFileIsPrivate(t *testing.T) {
	s := openStore(t)
	fi, err := os.Stat(s.Where())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("database mode %v, want 0600 (it holds tokens)", fi.Mode().Perm())
	}
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slum.db")
	ctx := context.Background()
	e, err := OpenEngine(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	s := store.New(e)
	if _, err := s.AddServer(ctx, slum.Server{ID: "s1", URL: "http://s1.test:8080", CapacityMB: 100}); err != nil {
		t.Fatal(err)
	}
	v1, err := e.SchemaVersion(ctx)
	if err != nil || v1 < 1 {
		t.Fatalf("schema version %d, %v", v1, err)
	}
	s.Close()
	e, err = OpenEngine(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	s = store.New(e)
	defer s.Close()
	if v2, _ := e.SchemaVersion(ctx); v2 != v1 {
		t.Fatalf("schema version went from %d to %d on reopen", v1, v2)
	}
	if _, err := s.GetServer(ctx, "s1"); err != nil {
		t.Fatalf("data lost on reopen: %v", err)
	}
}

func TestOpenRefusesWhatIsNotAFleet(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if _, err := OpenExisting(ctx, missing); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("OpenExisting of a missing file: %v", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("OpenExisting created the file")
	}
	text := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(text, []byte(examples.Fleet), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, open := range []func(context.Context, string) (*store.Store, error){Open, OpenExisting} {
		if _, err := open(ctx, text); !errors.Is(err, slum.ErrInvalid) || !strings.Contains(err.Error(), "not a slum database") {
			t.Fatalf("a YAML file as the database: %v", err)
		}
	}
	if data, _ := os.ReadFile(text); string(data) != examples.Fleet {
		t.Fatal("the refused file changed")
	}
	s, err := Open(ctx, missing)
	if err != nil || !s.Created() {
		t.Fatalf("Open of a missing file: %v, created %v", err, s != nil && s.Created())
	}
	s.Close()
	s, err = OpenExisting(ctx, missing)
	if err != nil || s.Created() {
		t.Fatalf("OpenExisting of a fleet: %v", err)
	}
	s.Close()
}

// Every kind a trigger writes into the change log is one ChangedSince
// reads, and every kind it reads is written by some trigger.
func TestChangedSinceReadsEveryKindTheTriggersWrite(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	raw, err := sql.Open("sqlite3", "file:"+s.Where()+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rows, err := raw.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'trigger'`)
	if err != nil {
		t.Fatal(err)
	}
	triggers := map[string]string{}
	for rows.Next() {
		var name, text string
		if err := rows.Scan(&name, &text); err != nil {
			t.Fatal(err)
		}
		triggers[name] = text
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		t.Fatal(err)
	}
	fleettest.ChangeKindsAreRead(t, s, triggers, func(kind slum.ChangeKind) {
		if _, err := raw.ExecContext(ctx, `INSERT INTO change_log (kind, key) VALUES (?, 'a:b')`, string(kind)); err != nil {
			t.Fatal(err)
		}
	})
}
