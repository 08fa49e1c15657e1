// Package store keeps a fleet: its desired state, what the controller
// reports of it, its API tokens, the controller's lease and the change log,
// on an Engine (SQLite, embedded; Postgres, for several hosts). Every
// change is checked first (by package desired's rules) and made in one
// transaction; every write of the controller carries its lease's fence.
//
// Store is the composition of one type per concern, each in its own
// files: Desired (servers, tenants, instances, fleet files, settings),
// Status (what the controller observed and decided, its ledger, held plans,
// events), Tokens, Leases and ChangeLog. It implements slum.Fleet and what
// the controller needs.
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/db"
)

// Engine is a database a Store runs on: the schema's queries (db.Querier,
// whose rows every engine hands back alike) and transactions.
type Engine interface {
	// Name is the engine's name: "sqlite" or "postgres".
	Name() string
	// Where says which database this is, for messages: a file's path, or
	// a URL without its password.
	Where() string
	// Created reports whether opening the engine created its database.
	Created() bool
	// Read runs single statements outside a transaction.
	Read() db.Querier
	// InTx runs fn in one write transaction, committing when it returns
	// nil and rolling back otherwise.
	InTx(ctx context.Context, fn func(q db.Querier) error) error
	// InReadTx runs fn in one transaction that sees one consistent state
	// and writes nothing.
	InReadTx(ctx context.Context, fn func(q db.Querier) error) error
	// Now is the engine's clock, which leases are taken and renewed by:
	// controllers on several hosts share the database's, not each other's.
	Now(ctx context.Context) (time.Time, error)
	Close() error
}

// Notifier is an Engine that tells of commits as they are made.
type Notifier interface {
	// Changes receives soon after every commit that changes the desired
	// state or the controller's status, and whenever commits may have
	// gone untold (so the reader reads again); it closes when ctx ends.
	Changes(ctx context.Context) <-chan struct{}
}

// HolderWrites is an Engine whose server can keep a write transaction open
// for a client that is gone: a network database, whose server learns of a
// client host cut off mid-transaction only from its keepalives or its idle
// timeout, tens of seconds later, while the transaction holds the fleet's
// write lock and every writer, a standby taking the lease included, waits.
// So a lease holder's write transactions carry its name, and whoever takes
// a lease that has expired first ends the old holder's, rather than wait
// for them. (SQLite's lock dies with its process.)
type HolderWrites interface {
	// WriteAs names holder on the write transactions made from now on.
	WriteAs(holder string)
	// EndWrites ends holder's open write transactions, wherever they were
	// made, rolling them back, and says how many it ended.
	EndWrites(ctx context.Context, holder string) (int, error)
}

// Store is one fleet's store.
type Store struct {
	Desired
	Status
	Tokens
	Leases
	ChangeLog
	Rollouts
	eng Engine
}

// Both the CLI and the API drive a Store through slum.Fleet.
var _ slum.Fleet = (*Store)(nil)

// New makes the Store of the fleet in eng. Leases go by the engine's
// clock.
func New(eng Engine) *Store {
	return build(base{eng: eng, now: time.Now, leaseNow: eng.Now})
}

// NewWithClock is New with a clock of the caller's, for leases too.
func NewWithClock(eng Engine, now func() time.Time) *Store {
	return build(base{eng: eng, now: now, leaseNow: func(context.Context) (time.Time, error) { return now(), nil }})
}

func build(b base) *Store {
	eng := b.eng
	return &Store{Desired: Desired{b}, Status: Status{b}, Tokens: Tokens{b}, Leases: Leases{b}, ChangeLog: ChangeLog{b}, Rollouts: Rollouts{b}, eng: eng}
}

// Close closes the database.
func (s *Store) Close() error { return s.eng.Close() }

// Where says which database the store is on, for messages.
func (s *Store) Where() string { return s.eng.Where() }

// Engine is the name of the store's engine.
func (s *Store) Engine() string { return s.eng.Name() }

// Created reports whether opening the store created its database.
func (s *Store) Created() bool { return s.eng.Created() }

// Changes is the engine's feed of commits (see Notifier), or nil (which
// never receives) when the engine has none and readers poll.
func (s *Store) Changes(ctx context.Context) <-chan struct{} {
	if n, ok := s.eng.(Notifier); ok {
		return n.Changes(ctx)
	}
	return nil
}

// base is what every part of the Store shares.
type base struct {
	eng      Engine
	now      func() time.Time
	leaseNow func(context.Context) (time.Time, error)
}

// write runs fn in one transaction that also bumps the desired revision, so
// a running controller sees the change at once.
func (b base) write(ctx context.Context, fn func(q db.Querier, now int64) error) error {
	now := ms(b.now())
	return b.eng.InTx(ctx, func(q db.Querier) error {
		if err := fn(q, now); err != nil {
			return err
		}
		return q.BumpRevision(ctx)
	})
}

// fenced runs fn in one transaction that first checks the fence.
func (b base) fenced(ctx context.Context, f slum.Fence, fn func(q db.Querier) error) error {
	return b.eng.InTx(ctx, func(q db.Querier) error {
		if err := checkFence(ctx, q, f); err != nil {
			return err
		}
		return fn(q)
	})
}

func event(ctx context.Context, q db.Querier, now int64, object slum.ObjectRef, reason slum.EventReason, msg string) error {
	return q.InsertEvent(ctx, db.InsertEventParams{At: now, Object: string(object), Reason: string(reason), Message: msg})
}

func itoa(v int64) string { return fmt.Sprint(v) }

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// convert maps rows read from the database to slum's types.
func convert[R, T any](rows []R, err error, what string, fn func(R) T) ([]T, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = fn(r)
	}
	return out, nil
}

func invalid(field, value, reason string) error {
	return &slum.FieldError{Field: field, Value: value, Reason: reason}
}
