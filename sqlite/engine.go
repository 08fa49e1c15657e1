// Package sqlite is slum's embedded engine: a fleet kept in one SQLite
// file, opened safely for a CLI and a controller that share it (files
// that are not slum's are refused untouched; the schema is migrated in
// place), running the queries of package db. Open hands back the fleet's
// store.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3" // registers the "sqlite3" driver
	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/db"
	"github.com/slum-fleet/slum/store"
)

// Engine is an open slum database with its prepared queries. Its
// connections are swapped whole when the file is opened again (Reopen).
type Engine struct {
	cur     atomic.Pointer[conns]
	reopen  sync.Mutex
	done    atomic.Bool // Close was called
	path    string
	created bool
}

// conns are the pools and queries of one opening of the file.
type conns struct {
	sql   *sql.DB     // writes: transactions take the write lock up front
	read  *sql.DB     // read transactions, which take no lock
	q     *db.Queries // prepared on sql
	rq    *db.Queries // prepared on read
	reads db.Querier  // q, its errors classed: what Read hands out
	file  fileID      // of the file opened
	// Its -wal and -shm, as they were when opened: once the file is
	// replaced they are the old file's, never the new one's.
	side map[string]fileID

	closing sync.Once
	closed  error
	shut    atomic.Bool // close was called: its calls fail with store.ErrMoved
}

var (
	_ store.Engine  = (*Engine)(nil)
	_ store.Checker = (*Engine)(nil)
)

// Errors Open returns for a file it will not use. Either way the file is
// left exactly as it was.
var (
	// ErrNotExist: there is no slum database at the path (no file, or an
	// empty one), and the caller did not ask for one to be created.
	ErrNotExist = errors.New("no slum database")
	// ErrForeign: the file is not a slum database: not SQLite, another
	// program's SQLite database, or one a newer slum made.
	ErrForeign = errors.New("not a slum database")
)

// Open opens the fleet database at path, creating it (0600, because it
// holds server tokens) when there is none, and brings its schema up to
// date. A file that is not a slum database is refused untouched, with an
// error wrapping slum.ErrInvalid.
func Open(ctx context.Context, path string) (*store.Store, error) { return open(ctx, path, true) }

// OpenExisting is Open for a fleet database that must exist already: where
// there is none it creates nothing and fails with an error wrapping
// slum.ErrNotFound.
func OpenExisting(ctx context.Context, path string) (*store.Store, error) {
	return open(ctx, path, false)
}

func open(ctx context.Context, path string, create bool) (*store.Store, error) {
	e, err := OpenEngine(ctx, path, create)
	switch {
	case errors.Is(err, ErrNotExist):
		return nil, classed{err, slum.ErrNotFound}
	case errors.Is(err, ErrForeign):
		return nil, classed{err, slum.ErrInvalid}
	case err != nil:
		return nil, err
	}
	return store.New(e), nil
}

// classed gives an error of the engine's one of slum's classes without
// changing its message.
type classed struct {
	err   error
	class error
}

func (e classed) Error() string   { return e.err.Error() }
func (e classed) Unwrap() []error { return []error{e.err, e.class} }

// OpenEngine opens the slum database at path, creating it when create is
// set and there is none.
func OpenEngine(ctx context.Context, path string, create bool) (*Engine, error) {
	if path == "" {
		return nil, errors.New("open database: empty path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open database %q: the path must not contain '?' or '#'", path)
	}
	created := false
	if path != ":memory:" {
		var err error
		if created, err = prepareFile(path, create); err != nil {
			return nil, err
		}
	}
	c, err := openConns(ctx, path, create)
	if err != nil {
		return nil, err
	}
	e := &Engine{path: path, created: created}
	e.use(c)
	return e, nil
}

// openConns opens the file at path: two pools, the schema checked and
// brought up to date, the queries prepared.
func openConns(ctx context.Context, path string, create bool) (*conns, error) {
	// IMMEDIATE transactions take the write lock up front, so two writers
	// wait on the busy timeout instead of failing on a lock upgrade. The
	// journal mode is set only once the file is known to be slum's: it is
	// written into the file.
	//
	// mode=rw: prepareFile made the file if it was to be made, so no
	// connection a pool opens later may create one. Without it a pool
	// opening a connection after the file was deleted would put an empty
	// database at the path, and the watch would read that as "replaced".
	dsn := "file:" + path + "?_foreign_keys=on&_busy_timeout=10000&_synchronous=NORMAL&_txlock=immediate"
	if path != ":memory:" {
		dsn += "&mode=rw"
	}
	sqldb, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if path == ":memory:" {
		sqldb.SetMaxOpenConns(1)
	}
	fail := func(err error) (*conns, error) {
		sqldb.Close()
		return nil, err
	}
	if err := sqldb.PingContext(ctx); err != nil {
		return fail(fmt.Errorf("open database %s: %w", path, err))
	}
	ms, err := loadMigrations()
	if err != nil {
		return fail(err)
	}
	empty, err := checkSchema(ctx, sqldb, ms)
	if err != nil {
		return fail(fmt.Errorf("open database %s: %w", path, err))
	}
	if empty && !create {
		return fail(fmt.Errorf("open database %s: %w: the file holds no fleet yet", path, ErrNotExist))
	}
	if path != ":memory:" {
		if _, err := sqldb.ExecContext(ctx, "PRAGMA journal_mode=WAL"); err != nil {
			return fail(fmt.Errorf("open database %s: %w", path, err))
		}
	}
	if err := migrate(ctx, sqldb, ms); err != nil {
		return fail(fmt.Errorf("migrate database %s: %w", path, err))
	}
	q, err := db.Prepare(ctx, sqldb)
	if err != nil {
		return fail(fmt.Errorf("prepare queries on %s: %w", path, err))
	}
	c := &conns{sql: sqldb, read: sqldb, q: q, rq: q}
	if path == ":memory:" {
		return c, nil
	}
	// A second pool whose transactions start deferred: a read
	// transaction never waits for the write lock.
	if c.read, err = sql.Open("sqlite3", strings.Replace(dsn, "_txlock=immediate", "_txlock=deferred", 1)); err == nil {
		c.rq, err = db.Prepare(ctx, c.read)
	}
	if err == nil {
		// The file the pools have open, as it is now: they opened it
		// above, so what is at the path is what they hold.
		c.file, err = statFile(path)
		c.side = map[string]fileID{}
		for _, p := range []string{path + "-wal", path + "-shm"} {
			if id, err := statFile(p); err == nil {
				c.side[p] = id
			}
		}
	}
	if err != nil {
		if c.rq == nil {
			c.read = sqldb
		}
		c.close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return c, nil
}

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// prepareFile checks what is at path before SQLite touches it: a missing
// file is created (0600) when create is set, and a file that is not SQLite
// is refused. created reports whether this call made the file.
func prepareFile(path string, create bool) (created bool, err error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !create:
		return false, fmt.Errorf("open database %s: %w: there is no such file", path, ErrNotExist)
	case errors.Is(err, fs.ErrNotExist):
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return false, nil // made by another process just now
		}
		if err != nil {
			return false, fmt.Errorf("create database %s: %w", path, err)
		}
		return true, f.Close()
	case err != nil:
		return false, fmt.Errorf("open database %s: %w", path, err)
	case !fi.Mode().IsRegular():
		return false, fmt.Errorf("open database %s: %w: it is not a regular file", path, ErrForeign)
	case fi.Size() == 0:
		// Empty: new, or a WAL database whose first pages are still in
		// its -wal file. SQLite knows which.
		return false, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("open database %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != sqliteHeader {
		return false, fmt.Errorf("open database %s: %w: it is not a SQLite database", path, ErrForeign)
	}
	return false, nil
}

// checkSchema tells a slum database, which it may migrate, from anything
// else, which it must not touch. empty reports a database with no tables.
func checkSchema(ctx context.Context, sqldb *sql.DB, ms []migration) (empty bool, err error) {
	rows, err := sqldb.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		if strings.Contains(err.Error(), "not a database") {
			return false, fmt.Errorf("%w: it is not a SQLite database", ErrForeign)
		}
		return false, err
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return false, err
		}
		tables = append(tables, name)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return false, err
	}
	if len(tables) == 0 {
		return true, nil
	}
	if !slices.Contains(tables, "schema_migrations") {
		return false, fmt.Errorf("%w: it is another program's SQLite database (tables %s)", ErrForeign, listSome(tables))
	}
	var version int
	if err := sqldb.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE name <> '' AND applied_at >= 0`).Scan(&version); err != nil {
		return false, fmt.Errorf("%w: it has a schema_migrations table, but not slum's (%v)", ErrForeign, err)
	}
	if latest := ms[len(ms)-1].version; version > latest {
		return false, fmt.Errorf("%w: a newer slum made it (schema version %d; this slum knows up to %d): use that slum", ErrForeign, version, latest)
	}
	known := knownTables(ms)
	var other []string
	for _, t := range tables {
		if !known[t] {
			other = append(other, t)
		}
	}
	if len(other) > 0 {
		return false, fmt.Errorf("%w: it holds tables slum never makes (%s)", ErrForeign, listSome(other))
	}
	return false, nil
}

var createTable = regexp.MustCompile(`(?i)\b(?:CREATE\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?|RENAME\s+TO)\s+["'\x60\[]?(\w+)`)

// knownTables are the tables slum's migrations create.
func knownTables(ms []migration) map[string]bool {
	known := map[string]bool{"schema_migrations": true}
	for _, m := range ms {
		for _, match := range createTable.FindAllStringSubmatch(m.sql, -1) {
			known[match[1]] = true
		}
	}
	return known
}

func listSome(names []string) string {
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + fmt.Sprintf(" and %d more", len(names)-5)
	}
	return strings.Join(names, ", ")
}

// Close closes the database.
func (e *Engine) Close() error {
	e.done.Store(true)
	return e.cur.Load().close()
}

func (c *conns) close() error {
	c.closing.Do(func() { c.shut.Store(true); c.closed = c.closeOnce() })
	return c.closed
}

func (c *conns) isClosed() bool { return c.shut.Load() }

// errReopening: the engine let go of a file that changed under it and
// has not opened the one at the path yet.
func (e *Engine) errReopening() error {
	if e.done.Load() {
		return fmt.Errorf("the fleet database %s is closed", e.path)
	}
	return fmt.Errorf("%w: %s is being opened again (it had been replaced)", store.ErrMoved, e.path)
}

func (c *conns) closeOnce() error {
	err := errors.Join(c.q.Close(), c.sql.Close())
	if c.read != c.sql {
		if c.rq != nil && c.rq != c.q {
			err = errors.Join(err, c.rq.Close())
		}
		err = errors.Join(err, c.read.Close())
	}
	return err
}

// Name is "sqlite".
func (e *Engine) Name() string { return "sqlite" }

// Where is the file the database was opened from.
func (e *Engine) Where() string { return e.path }

// Created reports whether opening it created the database file.
func (e *Engine) Created() bool { return e.created }

// Read runs single statements outside a transaction. Their errors are
// classed as a transaction's are: a file that cannot be read is
// store.ErrFault, and a statement that ran into a Reopen letting go of
// the file it was on is store.ErrMoved, both slum.ErrUnavailable.
func (e *Engine) Read() db.Querier { return e.cur.Load().reads }

// use makes c the connections calls go to, with its Read made once (a
// value in an interface would be made again on every statement).
func (e *Engine) use(c *conns) {
	c.reads = classified{q: c.q, c: c, e: e}
	e.cur.Store(c)
}

//go:generate go run ../internal/genquerier -db ../db -classify sqlite -out classified.gen.go

// classified is the db.Querier of Read: c's queries, whose errors pass
// through fault (classified.gen.go has its methods).
type classified struct {
	q db.Querier
	c *conns
	e *Engine
}

func (c classified) fault(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case c.c.isClosed():
		// database/sql's "statement is closed" or "database is closed":
		// say why.
		return c.e.errReopening()
	}
	return c.c.dropReadOnly(c.e.explain(fault(err)))
}

// InTx runs fn in one write transaction, committing when fn returns nil
// and the file open is still the one at the path, as a stat just before
// the commit sees it. A write to a file deleted or replaced there is
// refused (store.ErrMoved): SQLite would commit it to the file open,
// which no other process sees and a restore at the path overwrites, so it
// would be lost while looking done. (A file moved during the commit
// itself is not seen: the stat and the commit are not one step.)
func (e *Engine) InTx(ctx context.Context, fn func(q db.Querier) error) error {
	c := e.cur.Load()
	if c.isClosed() {
		return e.errReopening()
	}
	return c.dropReadOnly(e.explain(inTx(ctx, c.sql, c.q, func(q db.Querier) error {
		if err := fn(q); err != nil {
			return err
		}
		if err := e.moved(c); errors.Is(err, store.ErrMoved) {
			return fmt.Errorf("%w; nothing was written", err)
		}
		return nil // a failing stat says nothing of the file; SQLite's own errors do
	})))
}

// dropReadOnly lets go of the write pool's idle connections after err, a
// write refused as read-only: SQLite opens a connection read-only, for
// good, when the file cannot be written at that moment (made immutable,
// say), and a pool keeping it would refuse every write after the file is
// writable again. The next write opens a connection afresh.
func (c *conns) dropReadOnly(err error) error {
	var se sqlite3.Error
	// (":memory:" has one pool, whose one connection is the database.)
	if errors.As(err, &se) && se.Code == sqlite3.ErrReadonly && c.read != c.sql {
		c.sql.SetMaxIdleConns(0)
		c.sql.SetMaxIdleConns(idleConns)
	}
	return err
}

// idleConns is database/sql's default, which the pools keep.
const idleConns = 2

// InReadTx runs fn in one deferred transaction: a consistent read that
// takes no write lock.
func (e *Engine) InReadTx(ctx context.Context, fn func(q db.Querier) error) error {
	c := e.cur.Load()
	if c.isClosed() {
		return e.errReopening()
	}
	return e.explain(inTx(ctx, c.read, c.rq, fn))
}

// explain says which file a connection could not open, and what that
// likely means: SQLite says only "unable to open database file", which
// through the API reads like slum's own bug. Its class is kept.
func (e *Engine) explain(err error) error {
	var se sqlite3.Error
	if !errors.As(err, &se) || se.Code != sqlite3.ErrCantOpen {
		return err
	}
	return classed{fmt.Errorf("the fleet database %s cannot be opened (was its file deleted or moved?): %w", e.path, err), store.ErrFault}
}

func inTx(ctx context.Context, pool *sql.DB, q *db.Queries, fn func(q db.Querier) error) error {
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		return fault(fmt.Errorf("begin transaction: %w", err))
	}
	if err := fn(&txQueries{Queries: q.WithTx(tx), tx: tx}); err != nil {
		_ = tx.Rollback()
		return fault(err)
	}
	if err := tx.Commit(); err != nil {
		return fault(fmt.Errorf("commit: %w", err))
	}
	return nil
}

// SchemaVersion reports the highest migration applied.
func (e *Engine) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := e.cur.Load().sql.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(db.Migrations, "migrations")
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
		body, err := db.Migrations.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies, each in its own transaction, every embedded migration
// the database has not recorded yet. A database that is up to date is
// only read: opening it (every CLI command does) never waits for, or
// holds, the write lock a running controller may have.
func migrate(ctx context.Context, sqldb *sql.DB, ms []migration) error {
	current, err := upToDate(ctx, sqldb, ms)
	if err != nil || current {
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

// upToDate reports, by reading alone, whether the database has recorded
// every migration in ms.
func upToDate(ctx context.Context, sqldb *sql.DB, ms []migration) (bool, error) {
	var n int
	if err := sqldb.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil || n == 0 {
		return false, err
	}
	rows, err := sqldb.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	seen := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return false, err
		}
		seen[v] = true
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	for _, m := range ms {
		if !seen[m.version] {
			return false, nil
		}
	}
	return true, nil
}

// Now is the process's clock: SQLite is shared only by the processes of
// one host.
func (e *Engine) Now(context.Context) (time.Time, error) { return time.Now(), nil }
