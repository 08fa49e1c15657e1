package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/slum-fleet/slum/postgres/pgdb"
)

// querier runs db.Querier's queries (querier.gen.go) with pgdb's: now
// sends a statement and reads its result at once; later may queue one
// whose result nothing reads, to go with the next statement sent. Outside
// a transaction both send at once.
type querier struct {
	now, later *pgdb.Queries
}

// pgErr gives the store the errors it tests for: sql.ErrNoRows for a
// query that found no row.
func pgErr(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return sql.ErrNoRows
	}
	return err
}

// maxQueued bounds the statements a transaction keeps queued.
const maxQueued = 1000

// pipe sends one write transaction's statements. A queued statement goes
// with the next statement whose result is read, or before the commit, in
// one round trip with the others queued: a report of 2,000 status rows
// costs a few round trips, not 2,000. Statements run in the order they
// were made, so every read sees the writes made before it.
type pipe struct {
	tx     pgx.Tx
	batch  *pgx.Batch
	queued []string // the queries' names, for errors
}

func newPipe(tx pgx.Tx) *pipe { return &pipe{tx: tx, batch: &pgx.Batch{}} }

// querier is the pipe's db.Querier.
func (p *pipe) querier() querier {
	return querier{now: pgdb.New(p), later: pgdb.New(queue{p})}
}

func (p *pipe) queue(sql string, args ...any) {
	p.batch.Queue(sql, clean(args)...)
	p.queued = append(p.queued, queryName(sql))
}

// flush sends the queued statements and reads their results; the first
// that failed is the error, naming its query.
func (p *pipe) flush(ctx context.Context) error {
	if p.batch.Len() == 0 {
		return nil
	}
	batch, names := p.batch, p.queued
	p.batch, p.queued = &pgx.Batch{}, nil
	res := p.tx.SendBatch(ctx, batch)
	for _, name := range names {
		if _, err := res.Exec(); err != nil {
			_ = res.Close()
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return res.Close()
}

// queryName is the name sqlc gives a query in its text ("-- name: X :exec").
func queryName(sql string) string {
	line, _, _ := strings.Cut(sql, "\n")
	if rest, ok := strings.CutPrefix(line, "-- name: "); ok {
		name, _, _ := strings.Cut(rest, " ")
		return name
	}
	return "statement"
}

// The pipe is pgdb's connection for statements read at once: it sends the
// queued ones first.

func (p *pipe) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := p.flush(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return p.tx.Exec(ctx, sql, clean(args)...)
}

func (p *pipe) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.tx.Query(ctx, sql, clean(args)...)
}

func (p *pipe) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := p.flush(ctx); err != nil {
		return errRow{err}
	}
	return p.tx.QueryRow(ctx, sql, clean(args)...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// queue is pgdb's connection for statements whose results are not read:
// it queues them (sending them once maxQueued wait).
type queue struct{ p *pipe }

func (q queue) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	q.p.queue(sql, args...)
	if q.p.batch.Len() >= maxQueued {
		return pgconn.CommandTag{}, q.p.flush(ctx)
	}
	return pgconn.CommandTag{}, nil
}

func (q queue) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return q.p.Query(ctx, sql, args...)
}

func (q queue) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return q.p.QueryRow(ctx, sql, args...)
}

// pooled is pgdb's connection outside a transaction: any connection of
// the pool.
type pooled struct{ pool *pgxpool.Pool }

func (c pooled) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return c.pool.Exec(ctx, sql, clean(args)...)
}

func (c pooled) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return c.pool.Query(ctx, sql, clean(args)...)
}

func (c pooled) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return c.pool.QueryRow(ctx, sql, clean(args)...)
}

// clean makes every text Postgres can store: it refuses a text with a NUL
// byte or that is not UTF-8, which SQLite stores as it is. Slum's own
// values are checked before they get here; what is not is what servers
// said (an error's text, a message), which must not stop the controller
// from writing its report. Such bytes become U+FFFD.
func clean(args []any) []any {
	for i, a := range args {
		if s, ok := a.(string); ok && (!utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0) {
			args[i] = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
		}
	}
	return args
}
