package db

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenMigratesOnceAndIsPrivate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "x.db")
	for i := 0; i < 2; i++ {
		d, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		ms, _ := loadMigrations()
		v, err := d.SchemaVersion(ctx)
		if err != nil || v != ms[len(ms)-1].version {
			t.Fatalf("open %d: schema version %d (%v), want %d", i, v, err, ms[len(ms)-1].version)
		}
		var n int
		if err := d.sql.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(ms) {
			t.Fatalf("open %d: %d migrations recorded (%v), want %d", i, n, err, len(ms))
		}
		var fk int
		if err := d.sql.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Fatalf("foreign keys %d %v", fk, err)
		}
		var mode string
		if err := d.sql.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Fatalf("journal mode %q %v", mode, err)
		}
		d.Close()
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", fi.Mode(), err)
	}
	if _, err := Open(ctx, filepath.Join(t.TempDir(), "a?b.db")); err == nil {
		t.Fatal("a path with '?' was accepted")
	}
}

func TestInTxRollsBack(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.InTx(ctx, func(q *Queries) error {
		if err := q.BumpRevision(ctx); err != nil {
			return err
		}
		return os.ErrInvalid
	})
	if err != os.ErrInvalid {
		t.Fatalf("InTx returned %v", err)
	}
	if rev, _ := d.Queries().GetRevision(ctx); rev != 0 {
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
		stmts = append(stmts,
			`INSERT INTO servers (id, url, capacity_mb, domain, created_at, updated_at) VALUES ('s1', 'http://a', 1000, 'a', 1, 1)`,
			`INSERT INTO tenants (id, domain, created_at, updated_at) VALUES ('t', 't.example.com', 1, 1)`,
			`INSERT INTO instances (tenant_id, id, process, server_id, memory_mb, created_at, updated_at) VALUES ('t', 'prod', 'api', 's1', 1, 1, 1)`)
		for _, stmt := range stmts {
			if _, err := raw.ExecContext(ctx, stmt); err != nil {
				t.Fatalf("release %d: %v", upto, err)
			}
		}
		raw.Close()

		d, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("upgrade from %d: %v", upto, err)
		}
		if v, _ := d.SchemaVersion(ctx); v != ms[len(ms)-1].version {
			t.Fatalf("version after upgrade %d", v)
		}
		if _, err := d.Queries().GetServer(ctx, "s1"); err != nil {
			t.Fatalf("data lost in the upgrade: %v", err)
		}
		in, err := d.Queries().GetInstance(ctx, GetInstanceParams{TenantID: "t", ID: "prod"})
		if err != nil || in.HomeServerID != "s1" {
			t.Fatalf("an instance after the upgrade: %+v %v", in, err)
		}
		if tn, err := d.Queries().GetTenant(ctx, "t"); err != nil || tn.Failover != "move" || tn.Serving != "one" {
			t.Fatalf("a tenant after the upgrade: %+v %v", tn, err)
		}
		if _, err := d.Queries().InsertLease(ctx, InsertLeaseParams{Name: "x", Holder: "h", ExpiresAt: 1}); err != nil {
			t.Fatalf("the new table is missing: %v", err)
		}
		d.Close()
	}
}
