package rebalance

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/clock"
)

// Auto evens out the fleet by itself while the fleet's rebalance setting
// is on: at most one move every rebalance_every, made as 'slum rebalance
// --apply' makes it (make-before-break, through the controller), and only
// when nothing else moves (every copy running where it should, no stop
// pending, no server fencing or held, no rolling restart). It runs beside the controller,
// under its lease, and decides nothing the controller does.
type Auto struct {
	f     slum.Fleet
	clock clock.Clock
	log   *slog.Logger
	// Check is how often it looks.
	Check time.Duration
}

// NewAuto makes the rebalancer of f.
func NewAuto(f slum.Fleet, clk clock.Clock, log *slog.Logger) *Auto {
	return &Auto{f: f, clock: clk, log: log, Check: 15 * time.Second}
}

// Run rebalances until ctx ends.
func (a *Auto) Run(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.clock.After(a.Check):
		}
		moved, err := a.Step(ctx, last)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("rebalance: nothing moved this time", "err", err)
		}
		if moved {
			last = a.clock.Now()
		}
	}
}

// Step makes one move when the setting is on, the last move was at least
// rebalance_every ago, the fleet is quiet and a move evens it out.
func (a *Auto) Step(ctx context.Context, last time.Time) (bool, error) {
	set, err := a.f.Settings(ctx)
	if err != nil || set.Rebalance != slum.RebalanceOn {
		return false, err
	}
	now := a.clock.Now()
	if !last.IsZero() && now.Sub(last) < set.RebalanceEvery {
		return false, nil
	}
	if quiet, err := a.quiet(ctx); err != nil || !quiet {
		return false, err
	}
	in, err := Read(ctx, a.f, now)
	if err != nil {
		return false, err
	}
	moves := Plan(in, 1)
	if len(moves) == 0 {
		return false, nil
	}
	m := moves[0]
	if _, err := a.f.MoveInstance(ctx, m.Instance, m.To); err != nil {
		return false, err
	}
	a.log.Info("rebalance: moved", "instance", m.Instance, "from", m.From, "to", m.To)
	return true, nil
}

// rollouts is a fleet that keeps rolling restarts (the store).
type rollouts interface {
	UnfinishedRollout(ctx context.Context) (slum.Rollout, error)
}

// quiet reports whether nothing moves in the fleet now: no rolling
// restart either.
func (a *Auto) quiet(ctx context.Context) (bool, error) {
	if ro, ok := a.f.(rollouts); ok {
		if _, err := ro.UnfinishedRollout(ctx); err == nil {
			return false, nil
		} else if !errors.Is(err, slum.ErrNotFound) {
			return false, err
		}
	}
	ss, err := a.f.ListServerStatus(ctx)
	if err != nil {
		return false, err
	}
	for _, s := range ss {
		if s.PendingStops > 0 || s.Failover == slum.FailoverFencing || s.Failover == slum.FailoverHeld {
			return false, nil
		}
	}
	is, err := a.f.ListInstanceStatus(ctx)
	if err != nil {
		return false, err
	}
	for _, s := range is {
		switch s.Phase {
		case slum.PhaseRunning, slum.PhaseIdle, slum.PhaseStopped:
		default:
			return false, nil
		}
	}
	return true, nil
}
