package db

import (
	"context"
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
	path := filepath.Join(t.TempDir(), "old.db")
	// A database as the first release left it: migration 1 only, with data.
	d, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := loadMigrations()
	if len(ms) < 2 {
		t.Skip("only one migration")
	}
	for _, stmt := range []string{
		`INSERT INTO servers (id, url, capacity_mb, domain, created_at, updated_at) VALUES ('s1', 'http://a', 1, 'a', 1, 1)`,
		`DROP TABLE leases`,
		`DELETE FROM schema_migrations WHERE version > 1`,
	} {
		if _, err := d.sql.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()

	d, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	defer d.Close()
	if v, _ := d.SchemaVersion(ctx); v != ms[len(ms)-1].version {
		t.Fatalf("version after upgrade %d", v)
	}
	if _, err := d.Queries().GetServer(ctx, "s1"); err != nil {
		t.Fatalf("data lost in the upgrade: %v", err)
	}
	if _, err := d.Queries().InsertLease(ctx, InsertLeaseParams{Name: "x", Holder: "h", ExpiresAt: 1}); err != nil {
		t.Fatalf("the new table is missing: %v", err)
	}
}
