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

// Controllers heard from within standbyFresh are standbys; rows silent
// for forgetAfter are dropped (a controller killed without a word).
const (
	standbyFresh = 30 * time.Second
	forgetAfter  = 10 * time.Minute
)

// beat records that holder runs, at now (the engine's clock), and drops
// the rows of controllers long silent. Every take, renewal and attempt to
// take a lease beats (a standby of a live lease on a HolderWrites engine
// only records its own: beforeClaim), so standbys need no writes of their
// own.
func beat(ctx context.Context, q db.Querier, holder string, now time.Time) error {
	if err := recordBeat(ctx, q, holder, now); err != nil {
		return err
	}
	return q.ForgetControllers(ctx, ms(now.Add(-forgetAfter)))
}

// recordBeat records that holder runs, at now.
func recordBeat(ctx context.Context, q db.Querier, holder string, now time.Time) error {
	if err := q.BeatController(ctx, db.BeatControllerParams{Holder: holder, Now: ms(now)}); err != nil {
		return fmt.Errorf("record controller %s: %w", holder, err)
	}
	return nil
}

// leaseEvent is the event of holder taking the lease from prev (found
// says there was one) at epoch, or "" when it only renewed.
func leaseEvent(holder string, prev db.Lease, found bool, epoch int64, now time.Time, deadHolder string) (slum.EventReason, string) {
	switch {
	case found && prev.Holder == holder:
		return "", ""
	case !found:
		return slum.ReasonLeading, fmt.Sprintf("%s leads (epoch %d)", holder, epoch)
	case prev.Holder == deadHolder:
		return slum.ReasonTookOver, fmt.Sprintf("%s took over from %s, whose process is gone (epoch %d)", holder, prev.Holder, epoch)
	default:
		ago := now.Sub(fromMS(prev.ExpiresAt)).Round(time.Millisecond)
		return slum.ReasonTookOver, fmt.Sprintf("%s took over from %s, whose lease expired %s ago (epoch %d)", holder, prev.Holder, ago, epoch)
	}
}

// Leadership is who holds the named lease and who else runs: the
// controllers heard from lately that do not hold it. Ages are by the
// engine's clock.
func (s *Leases) Leadership(ctx context.Context, name string) (slum.Leadership, error) {
	now, err := s.leaseNow(ctx)
	if err != nil {
		return slum.Leadership{}, fmt.Errorf("read the leadership: read the clock: %w", err)
	}
	out := slum.Leadership{At: now, Standbys: []slum.Controller{}}
	err = s.eng.InReadTx(ctx, func(q db.Querier) error {
		l, err := q.GetLease(ctx, name)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("get lease %s: %w", name, err)
		default:
			out.Leader, out.Epoch, out.ExpiresAt = l.Holder, l.Epoch, fromMS(l.ExpiresAt)
			out.Live = out.ExpiresAt.After(now)
		}
		rows, err := q.ListControllers(ctx)
		if err != nil {
			return fmt.Errorf("list controllers: %w", err)
		}
		for _, r := range rows {
			c := slum.Controller{Holder: r.Holder, StartedAt: fromMS(r.StartedAt), SeenAt: fromMS(r.SeenAt)}
			switch {
			case r.Holder == out.Leader:
				out.RenewedAt = c.SeenAt
			case now.Sub(c.SeenAt) <= standbyFresh:
				out.Standbys = append(out.Standbys, c)
			}
		}
		return nil
	})
	if err != nil {
		return slum.Leadership{}, err
	}
	return out, nil
}
