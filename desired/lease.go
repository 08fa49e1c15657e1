package desired

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/slum-fleet/slum/db"
)

// Lease is a named, expiring claim on the fleet database: the controller
// holds one so that two never act on one fleet at once.
type Lease struct {
	Name      string    `json:"name"`
	Holder    string    `json:"holder"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AcquireLease takes the named lease for holder until now+ttl, or renews
// it when holder has it. A lease held by another is taken only once it
// has expired, or at once when its holder is deadHolder (one the caller
// knows is gone). Otherwise the error wraps ErrConflict and names the
// holder.
func (s *Store) AcquireLease(ctx context.Context, name, holder, deadHolder string, ttl time.Duration) (Lease, error) {
	if holder == "" || ttl <= 0 {
		return Lease{}, invalid("lease holder", holder, "must be named and have a positive ttl")
	}
	now := s.now()
	want := Lease{Name: name, Holder: holder, ExpiresAt: now.Add(ttl)}
	var cur db.Lease
	err := s.db.InTx(ctx, func(q *db.Queries) error {
		n, err := q.InsertLease(ctx, db.InsertLeaseParams{Name: name, Holder: holder, ExpiresAt: ms(want.ExpiresAt)})
		if err != nil || n > 0 {
			return err
		}
		n, err = q.ClaimLease(ctx, db.ClaimLeaseParams{Name: name, Holder: holder, ExpiresAt: ms(want.ExpiresAt),
			DeadHolder: deadHolder, Now: ms(now)})
		if err != nil || n > 0 {
			return err
		}
		cur, err = q.GetLease(ctx, name)
		if err != nil {
			return err
		}
		return errLeaseHeld
	})
	if errors.Is(err, errLeaseHeld) {
		return Lease{Name: cur.Name, Holder: cur.Holder, ExpiresAt: fromMS(cur.ExpiresAt)},
			fmt.Errorf("%w: %s holds the %s lease for %s more", ErrConflict, cur.Holder, name, fromMS(cur.ExpiresAt).Sub(now).Round(time.Second))
	}
	if err != nil {
		return Lease{}, fmt.Errorf("acquire the %s lease: %w", name, err)
	}
	return want, nil
}

var errLeaseHeld = errors.New("lease held")

// GetLease returns the named lease, or ErrNotFound.
func (s *Store) GetLease(ctx context.Context, name string) (Lease, error) {
	r, err := s.db.Queries().GetLease(ctx, name)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{}, fmt.Errorf("lease %s %w", name, ErrNotFound)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("get lease %s: %w", name, err)
	}
	return Lease{Name: r.Name, Holder: r.Holder, ExpiresAt: fromMS(r.ExpiresAt)}, nil
}

// ReleaseLease gives up holder's lease; it is a no-op for anyone else.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := s.db.Queries().ReleaseLease(ctx, db.ReleaseLeaseParams{Name: name, Holder: holder}); err != nil {
		return fmt.Errorf("release the %s lease: %w", name, err)
	}
	return nil
}
