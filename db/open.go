package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is an open slum database with its prepared queries.
type DB struct {
	sql  *sql.DB
	q    *Queries
	path string
}

// Open opens (creating if needed) the database at path and brings its schema
// up to date. A new file is created 0600 because it holds server tokens.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open database %q: the path must not contain '?' or '#'", path)
	}
	if path != ":memory:" {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", path, err)
		}
		f.Close()
	}
	// IMMEDIATE transactions take the write lock up front, so two writers
	// wait on the busy timeout instead of failing on a lock upgrade.
	dsn := "file:" + path + "?_foreign_keys=on&_busy_timeout=10000&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate"
	sqldb, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if path == ":memory:" {
		sqldb.SetMaxOpenConns(1)
	}
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := migrate(ctx, sqldb); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("migrate database %s: %w", path, err)
	}
	q, err := Prepare(ctx, sqldb)
	if err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("prepare queries on %s: %w", path, err)
	}
	return &DB{sql: sqldb, q: q, path: path}, nil
}

// Close closes the database.
func (d *DB) Close() error {
	qerr := d.q.Close()
	return errors.Join(qerr, d.sql.Close())
}

// Path is the file the database was opened from.
func (d *DB) Path() string { return d.path }

// Queries runs single statements outside a transaction.
func (d *DB) Queries() *Queries { return d.q }

// InTx runs fn in one write transaction, committing when fn returns nil.
func (d *DB) InTx(ctx context.Context, fn func(q *Queries) error) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(d.q.WithTx(tx)); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// SchemaVersion reports the highest migration applied.
func (d *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := d.sql.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and _", e.Name())
		}
		body, err := migrations.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies, each in its own transaction, every embedded migration
// the database has not recorded yet.
func migrate(ctx context.Context, sqldb *sql.DB) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	if _, err := sqldb.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return err
	}
	for _, m := range ms {
		tx, err := sqldb.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
			_ = tx.Rollback()
			return err
		}
		if n > 0 {
			_ = tx.Rollback()
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, time.Now().UnixMilli()); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	return nil
}
