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
// sends a statement and reads its result at once; in a write transaction
// (pipe set), later queues one whose result nothing reads, and a call of a
// statement with a bulk form joins a run of such calls (add), to go with
// the next statement whose result is read. Outside a transaction now and
// later both send at once.
type querier struct {
	now, later *pgdb.Queries
	pipe       *pipe
}

// pgErr gives the store the errors it tests for: sql.ErrNoRows for a
// query that found no row.
func pgErr(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return sql.ErrNoRows
	}
	return err
}

// maxQueued bounds the rows a transaction keeps queued.
const maxQueued = 5000

// pipe sends one write transaction's statements. Queued statements go
// with the next statement whose result is read, or before the commit, in
// one round trip, and a run of calls of one statement in a row as one
// statement of its bulk form: a report of 2,000 status rows costs a round
// trip and a few statements, not 2,000 of each. Statements run in the
// order they were made, so every read sees the writes made before it.
type pipe struct {
	tx      pgx.Tx
	runs    []run // queued, in order
	pending int   // rows in runs
}

// run is queued calls: one statement, or a run of calls of one statement
// with a bulk form.
type run interface {
	// send puts the run's statement in b.
	send(ctx context.Context, b *batch) error
}

func newPipe(tx pgx.Tx) *pipe { return &pipe{tx: tx} }

// querier is the pipe's db.Querier.
func (p *pipe) querier() querier {
	return querier{now: pgdb.New(p), later: pgdb.New(queue{p}), pipe: p}
}

// queue queues one statement.
func (p *pipe) queue(sql string, args ...any) {
	p.runs = append(p.runs, statement{sql: sql, args: args})
	p.pending++
}

// statement is one queued statement, as pgdb made it.
type statement struct {
	sql  string
	args []any
}

func (s statement) send(ctx context.Context, b *batch) error {
	_, err := b.Exec(ctx, s.sql, s.args...)
	return err
}

// bulk is a statement with a bulk form: send sends rows, the params of
// calls in a row, as one statement (or as the one call it is).
type bulk[T any] struct {
	send func(ctx context.Context, q *pgdb.Queries, rows []T) error
}

// rows is a run of calls of one bulk statement.
type rows[T any] struct {
	of   *bulk[T]
	rows []T
}

func (r *rows[T]) send(ctx context.Context, b *batch) error {
	return r.of.send(ctx, pgdb.New(b), r.rows)
}

// add queues a call of b with row, joining the run before it when that is
// of b too.
func add[T any](ctx context.Context, p *pipe, b *bulk[T], row T) error {
	if n := len(p.runs); n > 0 {
		if last, ok := p.runs[n-1].(*rows[T]); ok && last.of == b {
			last.rows = append(last.rows, row)
			return p.added(ctx)
		}
	}
	p.runs = append(p.runs, &rows[T]{of: b, rows: []T{row}})
	return p.added(ctx)
}

func (p *pipe) added(ctx context.Context) error {
	if p.pending++; p.pending >= maxQueued {
		return p.flush(ctx)
	}
	return nil
}

// flush sends the queued statements and reads their results; the first
// that failed is the error, naming its query.
func (p *pipe) flush(ctx context.Context) error {
	if len(p.runs) == 0 {
		return nil
	}
	b := &batch{}
	for _, r := range p.runs {
		if err := r.send(ctx, b); err != nil {
			return err
		}
	}
	p.runs, p.pending = nil, 0
	res := p.tx.SendBatch(ctx, &b.Batch)
	for _, name := range b.names {
		if _, err := res.Exec(); err != nil {
			_ = res.Close()
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return res.Close()
}

// batch is pgdb's connection while a pipe flushes: it puts each statement
// in a pgx batch.
type batch struct {
	pgx.Batch
	names []string // the statements' queries, for errors
}

func (b *batch) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	b.Queue(sql, clean(args)...)
	b.names = append(b.names, queryName(sql))
	return pgconn.CommandTag{}, nil
}

func (b *batch) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errors.New("postgres: a queued statement reads a result")
}

func (b *batch) QueryRow(context.Context, string, ...any) pgx.Row {
	return errRow{errors.New("postgres: a queued statement reads a result")}
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

// queue is pgdb's connection for queued statements without a bulk form.
type queue struct{ p *pipe }

func (q queue) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	q.p.queue(sql, args...)
	return pgconn.CommandTag{}, q.p.added(ctx)
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
		switch v := a.(type) {
		case string:
			if bad(v) {
				args[i] = fix(v)
			}
		case []string:
			copied := false
			for j, s := range v {
				if bad(s) {
					if !copied {
						v, copied = append([]string(nil), v...), true
					}
					v[j] = fix(s)
				}
			}
			args[i] = v
		}
	}
	return args
}

func bad(s string) bool { return !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 }

func fix(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}
