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
// holds one so that two never act on one fleet at once. Epoch grows each
// time the lease changes hands.
type Lease struct {
	Name      string    `json:"name"`
	Holder    string    `json:"holder"`
	Epoch     int64     `json:"epoch"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Fence is the lease a write is made under. Every write of the controller
// carries one and is refused with ErrFenced unless that lease is still held
// by that holder at that epoch (a fencing token).
type Fence struct {
	Lease  string
	Holder string
	Epoch  int64
}

// Fence returns the fencing token of the lease.
func (l Lease) Fence() Fence { return Fence{Lease: l.Name, Holder: l.Holder, Epoch: l.Epoch} }

// ErrFenced: the write's lease changed hands; the writer must stop acting.
var ErrFenced = errors.New("fenced: the lease is held by another controller")

// checkFence fails with ErrFenced unless f is current. It runs inside the
// write's transaction, so the check and the write are one.
func checkFence(ctx context.Context, q *db.Queries, f Fence) error {
	if f.Holder == "" {
		return fmt.Errorf("%w: the write carries no lease", ErrFenced)
	}
	n, err := q.CheckFence(ctx, db.CheckFenceParams{Name: f.Lease, Holder: f.Holder, Epoch: f.Epoch})
	if err != nil {
		return fmt.Errorf("check lease: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w (%s lease, epoch %d)", ErrFenced, f.Lease, f.Epoch)
	}
	return nil
}

// fenced runs fn in one transaction that first checks the fence.
func (s *Store) fenced(ctx context.Context, f Fence, fn func(q *db.Queries) error) error {
	return s.db.InTx(ctx, func(q *db.Queries) error {
		if err := checkFence(ctx, q, f); err != nil {
			return err
		}
		return fn(q)
	})
}

// AcquireLease takes the named lease for holder until now+ttl, or renews
// it when holder has it. A lease held by another is taken only once it
// has expired, or at once when its holder is deadHolder (one the caller
// knows is gone); taking it starts a new epoch. Otherwise the error wraps
// ErrConflict and names the holder.
func (s *Store) AcquireLease(ctx context.Context, name, holder, deadHolder string, ttl time.Duration) (Lease, error) {
	if holder == "" || ttl <= 0 {
		return Lease{}, invalid("lease holder", holder, "must be named and have a positive ttl")
	}
	now := s.now()
	var out db.Lease
	err := s.db.InTx(ctx, func(q *db.Queries) error {
		n, err := q.InsertLease(ctx, db.InsertLeaseParams{Name: name, Holder: holder, ExpiresAt: ms(now.Add(ttl))})
		if err != nil {
			return err
		}
		if n == 0 {
			n, err = q.ClaimLease(ctx, db.ClaimLeaseParams{Name: name, Holder: holder, ExpiresAt: ms(now.Add(ttl)),
				DeadHolder: deadHolder, Now: ms(now)})
			if err != nil {
				return err
			}
		}
		if out, err = q.GetLease(ctx, name); err != nil {
			return err
		}
		if n == 0 {
			return errLeaseHeld
		}
		return nil
	})
	if errors.Is(err, errLeaseHeld) {
		return toLease(out), fmt.Errorf("%w: %s holds the %s lease for %s more", ErrConflict, out.Holder, name, fromMS(out.ExpiresAt).Sub(now).Round(time.Second))
	}
	if err != nil {
		return Lease{}, fmt.Errorf("acquire the %s lease: %w", name, err)
	}
	return toLease(out), nil
}

var errLeaseHeld = errors.New("lease held")

func toLease(r db.Lease) Lease {
	return Lease{Name: r.Name, Holder: r.Holder, Epoch: r.Epoch, ExpiresAt: fromMS(r.ExpiresAt)}
}

// GetLease returns the named lease, or ErrNotFound.
func (s *Store) GetLease(ctx context.Context, name string) (Lease, error) {
	r, err := s.db.Queries().GetLease(ctx, name)
	if errors.Is(err, sql.ErrNoRows) {
		return Lease{}, fmt.Errorf("lease %s %w", name, ErrNotFound)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("get lease %s: %w", name, err)
	}
	return toLease(r), nil
}

// ReleaseLease gives up a lease; it is a no-op unless f is current.
func (s *Store) ReleaseLease(ctx context.Context, f Fence) error {
	if err := s.db.Queries().ReleaseLease(ctx, db.ReleaseLeaseParams{Name: f.Lease, Holder: f.Holder, Epoch: f.Epoch}); err != nil {
		return fmt.Errorf("release the %s lease: %w", f.Lease, err)
	}
	return nil
}
