// Package postgres is slum's engine for a fleet shared by several hosts:
// the fleet kept in a Postgres database (or one schema of it) that
// controllers, API servers and routers on different machines open by URL.
// It owns the Postgres schema (numbered migrations embedded in the binary,
// applied under an advisory lock), the queries sqlc generates for it
// (package pgdb) and their adapter to db.Querier (querier.gen.go, written
// by internal/genquerier), write transactions serialised as SQLite's are,
// the database's clock, and the feed of commits (LISTEN/NOTIFY). Open
// hands back the fleet's store; a database that is not slum's is refused
// untouched.
package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/db"
	"github.com/slum-fleet/slum/postgres/pgdb"
	"github.com/slum-fleet/slum/store"
)

//go:generate go run ../internal/genquerier -db ../db -pgdb pgdb -out querier.gen.go

// Engine is an open slum database on a Postgres server.
type Engine struct {
	pool    *pgxpool.Pool
	cfg     *pgxpool.Config
	where   string
	schema  string // the schema the fleet's tables are in
	created bool
	read    querier
	// life ends when the engine is closed, and with it the feeds of
	// commits.
	life context.Context
	end  context.CancelFunc
	// writer is the application_name write transactions carry: their
	// lease holder's (WriteAs, writerName); nil: none.
	writer atomic.Pointer[string]
}

var _ store.Engine = (*Engine)(nil)
var _ store.Notifier = (*Engine)(nil)
var _ store.HolderWrites = (*Engine)(nil)

// Errors OpenEngine returns for a database it will not use. Either way the
// database is left exactly as it was.
var (
	// ErrNotExist: the database holds no fleet (no tables at all), and
	// the caller did not ask for one to be made. It is a slum.ErrNotFound.
	ErrNotExist error = &classed{"no slum database", slum.ErrNotFound}
	// ErrForeign: the database is not a slum database: another program's
	// tables, or a schema a newer slum made. It is a slum.ErrInvalid.
	ErrForeign error = &classed{"not a slum database", slum.ErrInvalid}
	// ErrUnreachable: no connection to the server could be made.
	ErrUnreachable = errors.New("cannot reach the Postgres server")
)

// classed is an error of the engine's that is one of slum's classes
// (errors.Is), which its message does not repeat.
type classed struct {
	msg   string
	class error
}

func (e *classed) Error() string { return e.msg }
func (e *classed) Unwrap() error { return e.class }

// IsURL reports whether s names a Postgres database (a postgres:// or
// postgresql:// URL) rather than a SQLite file.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open opens the fleet in the Postgres database at url, making its
// schema when the database is empty, and brings the schema up to date.
func Open(ctx context.Context, url string) (*store.Store, error) { return open(ctx, url, true) }

// OpenExisting is Open for a fleet that must exist already: in a database
// that holds none it makes nothing and fails with ErrNotExist.
func OpenExisting(ctx context.Context, url string) (*store.Store, error) {
	return open(ctx, url, false)
}

func open(ctx context.Context, url string, create bool) (*store.Store, error) {
	e, err := OpenEngine(ctx, url, create)
	if err != nil {
		return nil, err
	}
	return store.New(e), nil
}

// OpenEngine opens the slum database at url (a postgres:// URL, or the
// key=value form libpq takes), creating its schema when the database is
// empty and create is set. Errors never show the password.
func OpenEngine(ctx context.Context, url string, create bool) (*Engine, error) {
	where := Redact(url)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, hidePassword(fmt.Errorf("open database %s: %w: %w", where, slum.ErrInvalid, err), passwordOf(url))
	}
	configure(cfg, url)
	secret := cfg.ConnConfig.Password
	fail := func(err error) error { return hidePassword(fmt.Errorf("open database %s: %w", where, err), secret) }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail(err)
	}
	e := &Engine{pool: pool, cfg: cfg, where: where}
	e.life, e.end = context.WithCancel(context.Background())
	read := pgdb.New(pooled{pool})
	e.read = querier{now: read, later: read}
	if err := e.prepare(ctx, create); err != nil {
		pool.Close()
		return nil, fail(err)
	}
	return e, nil
}

// configure gives what the URL leaves unsaid the values a fleet on several
// hosts wants. A host cut off (a controller's, say) must not hold the
// write lock for long: the server gives up on a client whose link is
// silent for some 25 s (keepalives) or that sits in a transaction doing
// nothing for 30 s, and slum gives up on a server likewise.
func configure(cfg *pgxpool.Config, url string) {
	cc := cfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = 10 * time.Second
	}
	for k, v := range map[string]string{"application_name": "slum", "idle_in_transaction_session_timeout": "30s",
		"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3"} {
		if _, ok := cc.RuntimeParams[k]; !ok {
			cc.RuntimeParams[k] = v
		}
	}
	cc.DialFunc = keepAliveDialer.DialContext
	// Writers wait for the write lock on a connection each: room for
	// them and the readers of a controller, an API and a router.
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = 16
	}
}

// keepAliveDialer finds a connection to a server that vanished (a cut
// link) dead within some 20 s, not the system's two hours.
var keepAliveDialer = &net.Dialer{Timeout: 10 * time.Second,
	KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 5 * time.Second, Count: 3}}

// prepare checks the database is slum's (or empty) and migrates it.
func (e *Engine) prepare(ctx context.Context, create bool) error {
	if err := e.pool.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	if e.schema, err = currentSchema(ctx, e.pool); err != nil {
		return err
	}
	empty, err := checkSchema(ctx, e.pool, e.schema, ms)
	if err != nil {
		return err
	}
	if empty && !create {
		return fmt.Errorf("%w: the database holds no fleet yet (schema %s has no tables)", ErrNotExist, e.schema)
	}
	e.created, err = migrate(ctx, e.pool, e.schema, ms)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Redact is a database's URL without its password, for messages: the
// password of the URL's user and a password parameter are left out (in
// the key=value form, the password=... pair).
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		var kept []string
		for _, f := range strings.Fields(s) {
			if !strings.HasPrefix(strings.ToLower(f), "password=") {
				kept = append(kept, f)
			}
		}
		return strings.Join(kept, " ")
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "password") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// passwordOf is the password in a URL that may not parse as pgx wants.
func passwordOf(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		pw, _ := u.User.Password()
		return pw
	}
	return ""
}

// hidePassword keeps secret out of err's message, whatever quoted it.
func hidePassword(err error, secret string) error {
	if secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return redacted{err, secret}
}

type redacted struct {
	err    error
	secret string
}

func (r redacted) Error() string { return strings.ReplaceAll(r.err.Error(), r.secret, "xxxxx") }
func (r redacted) Unwrap() error { return r.err }

// Name is "postgres".
func (e *Engine) Name() string { return "postgres" }

// Where is the database's URL without its password.
func (e *Engine) Where() string { return e.where }

// Created reports whether opening the engine created the fleet's schema.
func (e *Engine) Created() bool { return e.created }

// Close closes the engine's connections.
func (e *Engine) Close() error {
	e.end()
	e.pool.Close()
	return nil
}

// Read runs single statements outside a transaction, each on a
// connection of the pool.
func (e *Engine) Read() db.Querier { return e.read }

// Now is the database server's clock, which every controller shares.
func (e *Engine) Now(ctx context.Context) (time.Time, error) {
	ms, err := e.read.ClockMS(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the database's clock: %w", err)
	}
	return time.UnixMilli(ms), nil
}

// InTx runs fn in one write transaction, committing when fn returns nil.
//
// Writers are serialised, as SQLite serialises them: the transaction
// first takes the fleet's advisory write lock (slum_write_lock), held
// until it ends, and runs at READ COMMITTED, so each statement sees every
// earlier writer's commit. That keeps the store's read-check-write steps
// (capacity, anti-affinity, the lease's fence) true without retries, and
// the change log's positions gapless and in commit order, which readers
// rely on. SERIALIZABLE would instead fail and retry whole transactions
// whenever two writers overlap — a controller's report batches and the
// CLI would, often — and could not promise the log's order.
func (e *Engine) InTx(ctx context.Context, fn func(q db.Querier) error) error {
	tx, err := e.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	p := newPipe(tx)
	// Queued, so they go with the transaction's first statement: the
	// holder's name for as long as the transaction lasts, then the lock.
	// Named first, a write still waiting for the lock when its holder is
	// cut off is ended with those holding it.
	if w := e.writer.Load(); w != nil {
		p.queue(nameStatement, *w)
	}
	p.queue(lockStatement)
	if err := fn(p.querier()); err != nil {
		rollback(ctx, tx)
		return err
	}
	if err := p.flush(ctx); err != nil {
		rollback(ctx, tx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

const lockStatement = "-- name: slum_write_lock\nSELECT slum_write_lock(current_schema())"

// nameStatement names the transaction's session until the transaction
// ends (set_config's is_local), so that it shows in pg_stat_activity as
// its holder's. An error of its batch is the lock's (a wait cut short),
// so it goes by the lock's name.
const nameStatement = "-- name: slum_write_lock (named as its holder's)\nSELECT set_config('application_name', $1, true)"

// WriteAs names holder on the engine's write transactions from now on.
func (e *Engine) WriteAs(holder string) {
	name := writerName(holder)
	if w := e.writer.Load(); w == nil || *w != name {
		e.writer.Store(&name)
	}
}

// EndWrites ends holder's open write transactions, on any client of the
// database, with pg_terminate_backend: their connections close and the
// transactions roll back. It needs the right to signal those sessions
// (the same role, or pg_signal_backend; never a superuser's).
//
// Those waiting for the write lock end first, each waited for until its
// process is gone, and only then the one holding it: a waiter still
// exiting when the holder's end frees the lock could take it, and commit,
// before it reads its own end (seen under load, in about one takeover in
// twenty).
func (e *Engine) EndWrites(ctx context.Context, holder string) (int, error) {
	name := writerName(holder)
	var waiters, rest int
	err := e.pool.QueryRow(ctx, endWritesStatement+` AND wait_event_type = 'Lock'`, name, endWaitMS).Scan(&waiters)
	if err == nil {
		err = e.pool.QueryRow(ctx, endWritesStatement, name, endWaitMS).Scan(&rest)
	}
	if err != nil {
		return 0, fmt.Errorf("end the write transactions of %s: %w", holder, err)
	}
	return waiters + rest, nil
}

// endWritesStatement ends the sessions named $1, waiting up to $2 ms for
// each to exit, and counts those that did.
const endWritesStatement = `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, $2))::int FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database() AND pid <> pg_backend_pid()`

// endWaitMS bounds the wait for one ended session's process to exit.
const endWaitMS = 2000

// writerName is the application_name of holder's write transactions:
// "slum " and the holder, or, where that would not survive the server's
// 63 bytes of printable ASCII, the start of it and a digest of the rest.
func writerName(holder string) string {
	name := "slum " + holder
	printable := strings.IndexFunc(name, func(r rune) bool { return r < ' ' || r > '~' }) < 0
	if len(name) <= maxAppName && printable {
		return name
	}
	sum := sha256.Sum256([]byte(holder))
	digest := " " + hex.EncodeToString(sum[:8])
	head := []byte(name[:min(len(name), maxAppName-len(digest))])
	for i, c := range head {
		if c < ' ' || c > '~' {
			head[i] = '?'
		}
	}
	return string(head) + digest
}

// maxAppName is the most bytes of application_name a server keeps.
const maxAppName = 63

// InReadTx runs fn in one REPEATABLE READ, READ ONLY transaction: one
// consistent state, which takes no write lock.
func (e *Engine) InReadTx(ctx context.Context, fn func(q db.Querier) error) error {
	tx, err := e.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	q := pgdb.New(tx)
	if err := fn(querier{now: q, later: q}); err != nil {
		rollback(ctx, tx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// rollback ends tx even when ctx is done (pgx closes the connection when
// it cannot).
func rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// SchemaVersion reports the highest migration applied.
func (e *Engine) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := e.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
