package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/slum-fleet/slum"
)

// Faults of the database itself, as opposed to a rejected request. A
// controller stops acting on either: it cannot record what it does. Both
// are slum.ErrUnavailable to errors.Is (the API answers them 503).
var (
	// ErrFault: the database cannot take writes as it is (read-only,
	// full, failing) and will not until someone fixes it.
	ErrFault error = &faultError{"the fleet database cannot be used"}
	// ErrMoved: the database's file is no longer the one opened (deleted,
	// or replaced by another file); Reopen may open what is there now.
	ErrMoved error = &faultError{"the fleet database's file changed under it"}
)

type faultError struct{ msg string }

func (e *faultError) Error() string        { return e.msg }
func (e *faultError) Is(target error) bool { return target == slum.ErrUnavailable }

// Checker is an Engine that can tell, without writing, whether its
// database is still usable, and open it again when its file was replaced.
type Checker interface {
	// Check fails, wrapping ErrFault or ErrMoved, when the database is
	// not usable as opened.
	Check(ctx context.Context) error
	// Reopen opens the database now at the engine's place (which must be
	// an existing fleet) in place of the one open.
	Reopen(ctx context.Context) error
}

// Check reports whether the store's database is usable (see Checker); an
// engine that cannot tell counts as usable, its writes failing as they
// come.
func (s *Store) Check(ctx context.Context) error {
	if c, ok := s.eng.(Checker); ok {
		return c.Check(ctx)
	}
	return nil
}

// Reopen opens the store's database again (see Checker); a no-op for an
// engine that cannot.
func (s *Store) Reopen(ctx context.Context) error {
	if c, ok := s.eng.(Checker); ok {
		return c.Reopen(ctx)
	}
	return nil
}

// Refresh is Check, and when the database's file changed under it (a
// restore put another at its place), Reopen: for a process that follows
// the file. It reports whether it opened the database again; an error
// wrapping ErrMoved means the file is gone, or what is there now cannot
// be opened (the message says which), and the store still reads the old
// one. A fault that only writes suffer (ErrFault) is returned as Check
// returns it.
func (s *Store) Refresh(ctx context.Context) (reopened bool, err error) {
	err = s.Check(ctx)
	if !errors.Is(err, ErrMoved) {
		return false, err
	}
	if rerr := s.Reopen(ctx); rerr != nil {
		return false, fmt.Errorf("%w (and what is there now cannot be opened: %v)", err, rerr)
	}
	return true, nil
}
