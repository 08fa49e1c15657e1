package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/db"
)

// Leases are the named leases controllers hold, with the epoch that
// fences every write of a controller that lost its lease.
type Leases struct{ base }

// checkFence fails with ErrFenced unless f is current. It runs inside the
// write's transaction, so the check and the write are one.
func checkFence(ctx context.Context, q db.Querier, f slum.Fence) error {
	if f.Holder == "" {
		return fmt.Errorf("%w: the write carries no lease", slum.ErrFenced)
	}
	n, err := q.CheckFence(ctx, db.CheckFenceParams{Name: f.Lease, Holder: f.Holder, Epoch: f.Epoch})
	if err != nil {
		return fmt.Errorf("check lease: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w (%s lease, epoch %d)", slum.ErrFenced, f.Lease, f.Epoch)
	}
	return nil
}

// AcquireLease takes the named lease for holder until now+ttl, or renews
// it when holder has it; now is the engine's clock (the database's, which
// controllers on several hosts share). A lease held by another is taken
// only once it has expired, or at once when its holder is deadHolder (one
// the caller knows is gone); taking it starts a new epoch. Otherwise the
// error wraps ErrConflict and names the holder.
func (s *Leases) AcquireLease(ctx context.Context, name, holder, deadHolder string, ttl time.Duration) (slum.Lease, error) {
	if holder == "" || ttl <= 0 {
		return slum.Lease{}, invalid("lease holder", holder, "must be named and have a positive ttl")
	}
	hw, _ := s.eng.(HolderWrites)
	if hw != nil {
		hw.WriteAs(holder)
	}
	now, err := s.leaseNow(ctx)
	if err != nil {
		return slum.Lease{}, fmt.Errorf("acquire the %s lease: read the clock: %w", name, err)
	}
	pre, err := s.beforeClaim(ctx, hw, name, holder, deadHolder, now)
	if err != nil {
		return slum.Lease{}, fmt.Errorf("acquire the %s lease: %w", name, err)
	}
	if pre.held != nil {
		return toLease(*pre.held), heldError(name, *pre.held, now)
	}
	var out db.Lease
	held := false
	err = s.eng.InTx(ctx, func(q db.Querier) error {
		held = false
		prev, err := q.GetLease(ctx, name)
		found := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := beat(ctx, q, holder, now); err != nil {
			return err
		}
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
			// Commit the heartbeat: a standby is seen by trying.
			held = true
			return nil
		}
		if found && prev.Holder == deadHolder && deadHolder != "" {
			// A gone process stands by no more.
			if err := q.DeleteController(ctx, deadHolder); err != nil {
				return err
			}
		}
		if reason, msg := leaseEvent(holder, prev, found, out.Epoch, now, deadHolder); reason != "" {
			if reason == slum.ReasonTookOver {
				msg += pre.said()
			}
			return event(ctx, q, ms(now), slum.ControllerRef(holder), reason, msg)
		}
		return nil
	})
	if err == nil && held {
		return toLease(out), heldError(name, out, now)
	}
	if err != nil {
		if pre.endErr != nil {
			// Most likely what the claim waited for.
			err = fmt.Errorf("%w (and the expired holder's open write transactions could not be ended: %w)", err, pre.endErr)
		}
		return slum.Lease{}, fmt.Errorf("acquire the %s lease: %w", name, err)
	}
	return toLease(out), nil
}

// heldError says that another holds the lease.
func heldError(name string, l db.Lease, now time.Time) error {
	return fmt.Errorf("%w: %s holds the %s lease for %s more", slum.ErrConflict, l.Holder, name, fromMS(l.ExpiresAt).Sub(now).Round(time.Second))
}

// preClaim is what AcquireLease did before it took the write lock.
type preClaim struct {
	held   *db.Lease // another's live lease: the caller's beat is recorded
	ended  int       // the expired holder's sessions ended, each with a write open
	endErr error     // why they could not be
}

// said is what the takeover's event adds about the old holder's writes.
func (p preClaim) said() string {
	switch {
	case p.endErr != nil:
		return fmt.Sprintf("; its open write transactions could not be ended (%v), so the takeover may have waited for them", p.endErr)
	case p.ended > 0:
		return fmt.Sprintf("; ended %d of its sessions with a write open on the database", p.ended)
	}
	return ""
}

// beforeClaim keeps the claim off the write lock, on an engine that keeps
// a gone client's transactions (hw set), which a holder cut off mid-write
// may hold: a standby of a live lease only records its beat, a statement
// of its own, and a claim of a lease that expired by now first ends the
// old holder's open write transactions, which it would otherwise wait for
// until the server gave up on them. Ending them only rolls them back: a
// holder past its renew deadline sends nothing (the elector's MayAct),
// and one that renewed its lease in between loses those writes and
// retries them.
func (s *Leases) beforeClaim(ctx context.Context, hw HolderWrites, name, holder, deadHolder string, now time.Time) (preClaim, error) {
	if hw == nil {
		return preClaim{}, nil
	}
	cur, err := s.eng.Read().GetLease(ctx, name)
	switch {
	case err != nil || cur.Holder == holder || deadHolder != "" && cur.Holder == deadHolder:
		return preClaim{}, nil // none, ours, or a gone holder's: up to the claim (which reports errors)
	case cur.ExpiresAt >= ms(now):
		// Read runs statements on their own, writes too. Only the
		// caller's row: forgetting old rows deletes rows that the
		// holder's open write may have locked.
		if err := recordBeat(ctx, s.eng.Read(), holder, now); err != nil {
			return preClaim{}, err
		}
		return preClaim{held: &cur}, nil
	}
	n, err := hw.EndWrites(ctx, cur.Holder)
	return preClaim{ended: n, endErr: err}, nil
}

func toLease(r db.Lease) slum.Lease {
	return slum.Lease{Name: r.Name, Holder: r.Holder, Epoch: r.Epoch, ExpiresAt: fromMS(r.ExpiresAt)}
}

// GetLease returns the named lease, or ErrNotFound.
func (s *Leases) GetLease(ctx context.Context, name string) (slum.Lease, error) {
	r, err := s.eng.Read().GetLease(ctx, name)
	if errors.Is(err, sql.ErrNoRows) {
		return slum.Lease{}, fmt.Errorf("lease %s %w", name, slum.ErrNotFound)
	}
	if err != nil {
		return slum.Lease{}, fmt.Errorf("get lease %s: %w", name, err)
	}
	return toLease(r), nil
}

// ReleaseLease gives up a lease, and the holder's heartbeat with it (a
// controller that stops is no standby); it is a no-op unless f is current.
func (s *Leases) ReleaseLease(ctx context.Context, f slum.Fence) error {
	now := s.now()
	err := s.eng.InTx(ctx, func(q db.Querier) error {
		if err := q.DeleteController(ctx, f.Holder); err != nil {
			return err
		}
		cur, err := q.GetLease(ctx, f.Lease)
		if errors.Is(err, sql.ErrNoRows) || err == nil && (cur.Holder != f.Holder || cur.Epoch != f.Epoch) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := q.ReleaseLease(ctx, db.ReleaseLeaseParams{Name: f.Lease, Holder: f.Holder, Epoch: f.Epoch}); err != nil {
			return err
		}
		return event(ctx, q, ms(now), slum.ControllerRef(f.Holder), slum.ReasonSteppedDown,
			fmt.Sprintf("%s gave up the %s lease (epoch %d)", f.Holder, f.Lease, f.Epoch))
	})
	if err != nil {
		return fmt.Errorf("release the %s lease: %w", f.Lease, err)
	}
	return nil
}
