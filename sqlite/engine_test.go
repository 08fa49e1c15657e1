package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slum-fleet/slum/db"
)

func TestOpenMigratesOnceAndIsPrivate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	for i := 0; i < 2; i++ {
		d, err := OpenEngine(ctx, path, true)
		if err != nil {
			t.Fatal(err)
		}
		ms, _ := loadMigrations()
		v, err := d.SchemaVersion(ctx)
		if err != nil || v != ms[len(ms)-1].version {
			t.Fatalf("open %d: schema version %d (%v), want %d", i, v, err, ms[len(ms)-1].version)
		}
		var n int
		if err := d.cur.Load().sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
			t.Fatalf("open %d: %d migrations recorded (%v), want %d", i, n, err, len(ms))
		}
		var fk int
		if err := d.cur.Load().sql.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Fatalf("foreign keys %d %v", fk, err)
		}
		var mode string
		if err := d.cur.Load().sql.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal mode %q %v", mode, err)
		}
		d.Close()
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	if _, err := OpenEngine(ctx, filepath.Join(t.TempDir(), "a?b.db"), true); err == nil {
		t.Fatal("a path with '?' was accepted")
	}
}

func TestInTxRollsBack(t *testing.T) {
	ctx := context.Background()
	d, err := OpenEngine(ctx, filepath.Join(t.TempDir(), "x.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.InTx(ctx, func(q db.Querier) error {
		if err := q.BumpRevision(ctx); err != nil {
			return err
		}
		return os.ErrInvalid
	})
	if err != os.ErrInvalid {
		t.Fatalf("InTx returned %v", err)
	}
	if rev, _ := d.cur.Load().q.GetRevision(ctx); rev != 0 {
		t.Fatalf("a failed transaction left revision %d", rev)
	}
}

func TestOlderDatabaseUpgradesInPlace(t *testing.T) {
	ctx := context.Background()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	// A database as each earlier release left it, with data: only the
	// migrations up to that release applied.
	for upto := 1; upto < len(ms); upto++ {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("old-%d.db", upto))
		raw, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on")
		if err != nil {
			t.Fatal(err)
		}
		stmts := []string{`CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`}
		for _, m := range ms[:upto] {
			stmts = append(stmts, m.sql, fmt.Sprintf(`INSERT INTO schema_migrations VALUES (%d, '%s', 1)`, m.version, m.name))
		}
		instance := `INSERT INTO instances (tenant_id, id, process, server_id, memory_mb, created_at, updated_at) VALUES ('t', 'prod', 'api', 's1', 1, 1, 1)`
		if upto >= 3 {
			// Releases from 0003 on record where an instance was declared.
			instance = `INSERT INTO instances (tenant_id, id, process, server_id, home_server_id, memory_mb, created_at, updated_at) VALUES ('t', 'prod', 'api', 's1', 's1', 1, 1, 1)`
		}
		stmts = append(stmts,
			`INSERT INTO servers (id, url, capacity_mb, domain, created_at, updated_at) VALUES ('s1', 'http://a', 1000, 'a', 1, 1)`,
			`INSERT INTO tenants (id, domain, created_at, updated_at) VALUES ('t', 't.example.com', 1, 1)`,
			instance)
		for _, stmt := range stmts {
			if _, err := raw.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("release %d: %v", upto, err)
			}
		}
		raw.Close()

		d, err := OpenEngine(ctx, path, true)
		if err != nil {
			t.Fatalf("upgrade from %d: %v", upto, err)
		}
		if v, _ := d.SchemaVersion(ctx); v != ms[len(ms)-1].version {
			t.Fatalf("version after upgrade %d", v)
		}
		if _, err := d.cur.Load().q.GetServer(ctx, "s1"); err != nil {
			t.Fatalf("data lost in the upgrade: %v", err)
		}
		in, err := d.cur.Load().q.GetInstance(ctx, db.GetInstanceParams{TenantID: "t", ID: "prod"})
		if err != nil || in.HomeServerID != "s1" {
			t.Fatalf("an instance after the upgrade: %+v %v", in, err)
		}
		if tn, err := d.cur.Load().q.GetTenant(ctx, "t"); err != nil || tn.Failover != "move" || tn.Serving != "one" {
			t.Fatalf("a tenant after the upgrade: %+v %v", tn, err)
		}
		if _, err := d.cur.Load().q.InsertLease(ctx, db.InsertLeaseParams{Name: "x", Holder: "h", ExpiresAt: 1}); err != nil {
			t.Fatalf("the new table is missing: %v", err)
		}
		d.Close()
	}
}

// sqliteFile makes a SQLite database with stmts, as another program would.
func sqliteFile(t *testing.T, path string, stmts ...string) {
	t.Helper()
	d, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, s := range stmts {
		if _, err := d.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenRefusesForeignFilesUntouched(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cases := map[string]func(path string){
		"another program's tables": func(p string) {
			sqliteFile(t, p, `CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)`, `INSERT INTO users (name) VALUES ('ann')`)
		},
		"another tool's schema_migrations": func(p string) {
			sqliteFile(t, p, `CREATE TABLE schema_migrations (version INTEGER NOT NULL, dirty BOOLEAN NOT NULL)`, `INSERT INTO schema_migrations VALUES (3, 0)`)
		},
		"slum's tables and more": func(p string) {
			d, err := OpenEngine(ctx, p, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.cur.Load().sql.ExecContext(ctx, `CREATE TABLE notes (x TEXT)`); err != nil {
				t.Fatal(err)
			}
			d.Close()
		},
		"a newer slum's": func(p string) {
			d, err := OpenEngine(ctx, p, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.cur.Load().sql.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (9999, '9999_future.sql', 1)`); err != nil {
				t.Fatal(err)
			}
			d.Close()
		},
		"a WAL database of another program": func(p string) {
			sqliteFile(t, p, `PRAGMA journal_mode=WAL`, `CREATE TABLE t (x)`)
		},
		"not SQLite": func(p string) {
			if err := os.WriteFile(p, []byte("version: 1\nservers: []\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"short": func(p string) {
			if err := os.WriteFile(p, []byte("SQLite"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".db")
			build(path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, open := range []func(context.Context, string) (*Engine, error){openCreating, openExisting} {
				d, err := open(ctx, path)
				if !errors.Is(err, ErrForeign) {
					if d != nil {
						d.Close()
					}
					t.Fatalf("opened: %v", err)
				}
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Fatal("the refused file changed")
			}
			for _, side := range []string{"-wal", "-shm", "-journal"} {
				if _, err := os.Stat(path + side); err == nil {
					t.Errorf("a %s file was left behind", side)
				}
			}
		})
	}
}

func TestOpenExistingCreatesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if _, err := OpenEngine(ctx, missing, false); !errors.Is(err, ErrNotExist) {
		t.Fatalf("a missing file: %v", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenExisting created %s", missing)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenEngine(ctx, empty, false); !errors.Is(err, ErrNotExist) {
		t.Fatalf("an empty file: %v", err)
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
		t.Fatalf("OpenExisting wrote to an empty file: %v %v", fi, err)
	}
	// Open takes an empty file as a new database; OpenExisting then opens it.
	d, err := OpenEngine(ctx, empty, true)
	if err != nil || d.Created() {
		t.Fatalf("Open of an empty file: %v (created %v)", err, d != nil && d.Created())
	}
	d.Close()
	d, err = OpenEngine(ctx, empty, false)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = OpenEngine(ctx, missing, true)
	if err != nil || !d.Created() {
		t.Fatalf("Open of a missing file: %v", err)
	}
	d.Close()
}

func TestEveryTableIsKnown(t *testing.T) {
	ctx := context.Background()
	d, err := OpenEngine(ctx, filepath.Join(t.TempDir(), "x.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ms, _ := loadMigrations()
	known := knownTables(ms)
	rows, err := d.cur.Load().sql.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !known[name] {
			t.Errorf("table %s is not among the known tables %v", name, known)
		}
		n++
	}
	if n < 5 {
		t.Fatalf("only %d tables", n)
	}
}

// A controller writing a large report holds the write lock for a while;
// opening the database (as every CLI command does) must not wait for it.
func TestOpenUpToDateDatabaseTakesNoWriteLock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	d, err := OpenEngine(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	conn, err := d.cur.Load().sql.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "ROLLBACK")

	// A busy timeout of zero: any wait for the lock fails at once.
	sqldb, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=0&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer sqldb.Close()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, sqldb, ms); err != nil {
		t.Fatalf("migrate of an up-to-date database while another holds the write lock: %v", err)
	}
}

func openCreating(ctx context.Context, path string) (*Engine, error) {
	return OpenEngine(ctx, path, true)
}
func openExisting(ctx context.Context, path string) (*Engine, error) {
	return OpenEngine(ctx, path, false)
}
