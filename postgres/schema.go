package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/slum-fleet/slum/postgres/pgdb"
)

// migrations holds the Postgres schema's migrations, numbered from 1 in
// their names (0001_init.sql), each applied once, in order.
//
//go:embed migrations/*.sql
var migrations embed.FS

// writeLockSpace is the first key of the fleet's advisory write lock (the
// second is the schema's name, hashed), as migration 0001's
// slum_write_lock takes it: "slum" in ASCII. Migrations take it too, so a
// schema changes under no writer.
const writeLockSpace = 0x736c756d

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations, which must be numbered
// 1, 2, 3… without gaps or repeats.
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, path := range names {
		name := strings.TrimPrefix(path, "migrations/")
		prefix, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: the name must start with its number and _", name)
		}
		body, err := migrations.ReadFile(path)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: want number %d (migrations are numbered from 1 without gaps)", m.name, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations embedded")
	}
	return ms, nil
}

// currentSchema is the schema the fleet's tables are (or will be) in: the
// first of the search_path that exists.
func currentSchema(ctx context.Context, q pgdb.DBTX) (string, error) {
	var schema *string
	if err := q.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", err
	}
	if schema == nil {
		return "", fmt.Errorf("%w: the search_path names no schema that exists", ErrForeign)
	}
	return *schema, nil
}

// checkSchema tells a slum schema, which it may migrate, from anything
// else, which it must not touch. empty reports a schema with no tables.
func checkSchema(ctx context.Context, q pgdb.DBTX, schema string, ms []migration) (empty bool, err error) {
	rows, err := q.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname`, schema)
	if err != nil {
		return false, err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, err
	}
	if len(tables) == 0 {
		return true, nil
	}
	known := knownTables(ms)
	others := slices.DeleteFunc(slices.Clone(tables), func(t string) bool { return known[t] })
	switch {
	case !slices.Contains(tables, "schema_migrations"):
		return false, fmt.Errorf("%w: schema %s holds another program's tables (%s)", ErrForeign, schema, listSome(tables))
	case len(others) > 0:
		return false, fmt.Errorf("%w: schema %s holds tables slum never makes (%s)", ErrForeign, schema, listSome(others))
	}
	// Slum records each migration with its name and time; another tool's
	// table of the name records something else.
	var version int
	err = q.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0)::int FROM schema_migrations WHERE name <> '' AND applied_at >= 0`).Scan(&version)
	if err != nil {
		return false, fmt.Errorf("%w: schema %s has a schema_migrations table, but not slum's (%v)", ErrForeign, schema, err)
	}
	if latest := ms[len(ms)-1].version; version > latest {
		return false, fmt.Errorf("%w: a newer slum made it (schema version %d; this slum knows up to %d): use that slum", ErrForeign, version, latest)
	}
	return false, nil
}

var tableName = regexp.MustCompile(`(?i)\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"?(\w+)|\bRENAME\s+TO\s+"?(\w+)`)

// knownTables are the tables slum's migrations create, and the record of
// migrations itself.
func knownTables(ms []migration) map[string]bool {
	known := map[string]bool{"schema_migrations": true}
	for _, m := range ms {
		for _, match := range tableName.FindAllStringSubmatch(m.sql, -1) {
			known[match[1]+match[2]] = true
		}
	}
	return known
}

// listSome names the first few of names, and how many there are.
func listSome(names []string) string {
	const few = 4
	if len(names) <= few {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, … (%d in all)", strings.Join(names[:few], ", "), len(names))
}

// migrate applies every migration the schema has not recorded, each in
// its own transaction under the write lock, so two processes opening a
// new database at once apply each migration once; the second finds it
// recorded and skips it. An up-to-date schema is only read. created
// reports whether this call made the schema (applied the first
// migration).
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, ms []migration) (created bool, err error) {
	if current, err := upToDate(ctx, pool, schema, ms); err != nil || current {
		return false, err
	}
	for _, m := range ms {
		applied, err := apply(ctx, pool, schema, m, ms)
		if err != nil {
			return false, fmt.Errorf("%s: %w", m.name, err)
		}
		created = created || (applied && m.version == 1)
	}
	return created, nil
}

// apply applies m unless the schema has it already, in one transaction.
func apply(ctx context.Context, pool *pgxpool.Pool, schema string, m migration, ms []migration) (applied bool, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer rollback(ctx, tx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, writeLockSpace, schema); err != nil {
		return false, err
	}
	// Under the lock: what another process made while this one waited
	// must still be slum's.
	if _, err := checkSchema(ctx, tx, schema, ms); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version bigint NOT NULL PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`); err != nil {
		return false, err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, m.version).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, tx.Commit(ctx)
	}
	if _, err := tx.Exec(ctx, m.sql); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
		m.version, m.name, time.Now().UnixMilli()); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

// upToDate reports, by reading alone, whether the schema has recorded
// every migration in ms.
func upToDate(ctx context.Context, q pgdb.DBTX, schema string, ms []migration) (bool, error) {
	var exists bool
	if err := q.QueryRow(ctx, `SELECT to_regclass(quote_ident($1) || '.schema_migrations') IS NOT NULL`, schema).Scan(&exists); err != nil || !exists {
		return false, err
	}
	rows, err := q.Query(ctx, `SELECT version::int FROM schema_migrations`)
	if err != nil {
		return false, err
	}
	seen, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return false, err
	}
	for _, m := range ms {
		if !slices.Contains(seen, m.version) {
			return false, nil
		}
	}
	return true, nil
}
