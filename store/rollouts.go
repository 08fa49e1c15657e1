package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/db"
)

// Rollouts keeps the fleet's rolling restarts, so one interrupted goes on
// where it stopped: one unfinished at a time, one runner at a time.
type Rollouts struct{ base }

func toRollout(r db.Rollout) (slum.Rollout, error) {
	out := slum.Rollout{ID: r.ID, State: slum.RolloutState(r.State), Message: r.Message, Runner: r.Runner,
		Heartbeat: fromMS(r.HeartbeatAt), CreatedAt: fromMS(r.CreatedAt), UpdatedAt: fromMS(r.UpdatedAt)}
	if err := json.Unmarshal([]byte(r.Spec), &out.Spec); err != nil {
		return out, fmt.Errorf("rollout %d: its spec: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(r.Steps), &out.Steps); err != nil {
		return out, fmt.Errorf("rollout %d: its steps: %w", r.ID, err)
	}
	return out, nil
}

func toRollouts(rs []db.Rollout, err error) ([]slum.Rollout, error) {
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	out := make([]slum.Rollout, 0, len(rs))
	for _, r := range rs {
		ro, err := toRollout(r)
		if err != nil {
			return nil, err
		}
		out = append(out, ro)
	}
	return out, nil
}

// CreateRollout records a new rolling restart of steps, run by runner.
// It is an ErrConflict while another is unfinished, and ErrInvalid
// without steps.
func (s *Rollouts) CreateRollout(ctx context.Context, spec slum.RestartSpec, steps []slum.RolloutStep, runner string) (slum.Rollout, error) {
	if err := spec.Validate(); err != nil {
		return slum.Rollout{}, err
	}
	if len(steps) == 0 {
		return slum.Rollout{}, fmt.Errorf("restart %s: %w: no copy to restart", spec, slum.ErrInvalid)
	}
	specJSON, _ := json.Marshal(spec)
	stepsJSON, _ := json.Marshal(steps)
	var id int64
	err := s.write(ctx, func(q db.Querier, now int64) error {
		running, err := q.ListRunningRollouts(ctx)
		if err != nil {
			return fmt.Errorf("list rollouts: %w", err)
		}
		if len(running) > 0 {
			return fmt.Errorf("restart %s: %w: rollout %d is unfinished ('slum restart --resume' or '--abandon')", spec, slum.ErrConflict, running[0].ID)
		}
		id, err = q.InsertRollout(ctx, db.InsertRolloutParams{Spec: string(specJSON), Steps: string(stepsJSON), Runner: runner,
			HeartbeatAt: now, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			return fmt.Errorf("record rollout: %w", err)
		}
		return event(ctx, q, now, slum.RolloutRef(id), slum.ReasonRolloutStarted, fmt.Sprintf("rolling restart of %s: %d copies", spec, len(steps)))
	})
	if err != nil {
		return slum.Rollout{}, err
	}
	return s.GetRollout(ctx, id)
}

// GetRollout returns one rollout; ErrNotFound when there is none.
func (s *Rollouts) GetRollout(ctx context.Context, id int64) (slum.Rollout, error) {
	r, err := s.eng.Read().GetRollout(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return slum.Rollout{}, fmt.Errorf("rollout %d: %w", id, slum.ErrNotFound)
	}
	if err != nil {
		return slum.Rollout{}, fmt.Errorf("read rollout %d: %w", id, err)
	}
	return toRollout(r)
}

// ListRollouts returns the latest n rollouts, newest first.
func (s *Rollouts) ListRollouts(ctx context.Context, n int64) ([]slum.Rollout, error) {
	if n <= 0 {
		return nil, &slum.FieldError{Field: "last", Value: fmt.Sprint(n), Reason: "must be at least 1"}
	}
	return toRollouts(s.eng.Read().ListRecentRollouts(ctx, n))
}

// UnfinishedRollout is the rollout still running or interrupted;
// ErrNotFound when there is none.
func (s *Rollouts) UnfinishedRollout(ctx context.Context) (slum.Rollout, error) {
	rs, err := toRollouts(s.eng.Read().ListRunningRollouts(ctx))
	if err != nil {
		return slum.Rollout{}, err
	}
	if len(rs) == 0 {
		return slum.Rollout{}, fmt.Errorf("unfinished rollout: %w", slum.ErrNotFound)
	}
	return rs[0], nil
}

// ClaimRollout makes runner the runner of an unfinished rollout whose
// runner's heartbeat is older than stale: ErrConflict while its runner is
// alive or it is finished.
func (s *Rollouts) ClaimRollout(ctx context.Context, id int64, runner string, stale time.Duration) (slum.Rollout, error) {
	now := s.now()
	var n int64
	err := s.eng.InTx(ctx, func(q db.Querier) error {
		var err error
		n, err = q.ClaimRollout(ctx, db.ClaimRolloutParams{Runner: runner, HeartbeatAt: ms(now), UpdatedAt: ms(now), ID: id,
			HeartbeatAt_2: ms(now.Add(-stale))})
		return err
	})
	if err != nil {
		return slum.Rollout{}, fmt.Errorf("claim rollout %d: %w", id, err)
	}
	r, err := s.GetRollout(ctx, id)
	if err != nil {
		return r, err
	}
	if n == 0 {
		if r.State.Finished() {
			return r, fmt.Errorf("rollout %d: %w: it is %s", id, slum.ErrConflict, r.State)
		}
		return r, fmt.Errorf("rollout %d: %w: it is being run (heartbeat %s ago)", id, slum.ErrConflict, now.Sub(r.Heartbeat).Round(time.Second))
	}
	return r, nil
}

// ErrRolloutTaken: the rollout's runner is someone else now, or it was
// abandoned: the runner must stop.
var ErrRolloutTaken = fmt.Errorf("%w: the rollout is no longer this runner's", slum.ErrConflict)

// SaveRollout writes r's state, steps and message, with events, as its
// runner (ErrRolloutTaken when it no longer is). It bumps the desired
// revision, so the controller sees which copies restart now.
func (s *Rollouts) SaveRollout(ctx context.Context, r slum.Rollout, evs ...slum.Event) error {
	return s.write(ctx, func(q db.Querier, now int64) error {
		if err := saveRollout(ctx, q, r, now); err != nil {
			return err
		}
		for _, ev := range evs {
			if err := event(ctx, q, now, ev.Object, ev.Reason, ev.Message); err != nil {
				return err
			}
		}
		return nil
	})
}

// HeartbeatRollout says r's runner is alive: SaveRollout without events
// or a new revision.
func (s *Rollouts) HeartbeatRollout(ctx context.Context, r slum.Rollout) error {
	now := ms(s.now())
	return s.eng.InTx(ctx, func(q db.Querier) error { return saveRollout(ctx, q, r, now) })
}

func saveRollout(ctx context.Context, q db.Querier, r slum.Rollout, now int64) error {
	stepsJSON, _ := json.Marshal(r.Steps)
	n, err := q.SaveRollout(ctx, db.SaveRolloutParams{State: string(r.State), Steps: string(stepsJSON), Message: r.Message,
		HeartbeatAt: now, UpdatedAt: now, ID: r.ID, Runner: r.Runner})
	if err != nil {
		return fmt.Errorf("save rollout %d: %w", r.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("rollout %d: %w", r.ID, ErrRolloutTaken)
	}
	return nil
}

// ReleaseRollout lets an interrupted rollout go, unfinished, with r's
// steps (none restarting): another runner may resume it at once. It bumps
// the desired revision: the controller no longer avoids its copies.
func (s *Rollouts) ReleaseRollout(ctx context.Context, r slum.Rollout) error {
	stepsJSON, _ := json.Marshal(r.Steps)
	return s.write(ctx, func(q db.Querier, now int64) error {
		n, err := q.ReleaseRollout(ctx, db.ReleaseRolloutParams{Steps: string(stepsJSON), UpdatedAt: now, ID: r.ID, Runner: r.Runner})
		if err != nil {
			return fmt.Errorf("release rollout %d: %w", r.ID, err)
		}
		if n == 0 {
			return fmt.Errorf("rollout %d: %w", r.ID, ErrRolloutTaken)
		}
		return nil
	})
}

// AbandonRollout gives an unfinished rollout up (its runner, if alive,
// stops at its next save); ErrConflict when it is finished.
func (s *Rollouts) AbandonRollout(ctx context.Context, id int64) (slum.Rollout, error) {
	err := s.write(ctx, func(q db.Querier, now int64) error {
		n, err := q.AbandonRollout(ctx, db.AbandonRolloutParams{Message: "abandoned by an operator", UpdatedAt: now, ID: id})
		if err != nil {
			return fmt.Errorf("abandon rollout %d: %w", id, err)
		}
		if n == 0 {
			r, err := q.GetRollout(ctx, id)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("rollout %d: %w", id, slum.ErrNotFound)
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("abandon rollout %d: %w: it is %s", id, slum.ErrConflict, r.State)
		}
		return event(ctx, q, now, slum.RolloutRef(id), slum.ReasonRolloutDone, "abandoned by an operator; copies not yet restarted are untouched")
	})
	if err != nil {
		return slum.Rollout{}, err
	}
	return s.GetRollout(ctx, id)
}

// restartingNow are the copies unfinished rollouts restart now: the
// controller picks none of them to serve while another copy can.
func restartingNow(ctx context.Context, q db.Querier) ([]slum.InstanceKey, error) {
	rs, err := toRollouts(q.ListRunningRollouts(ctx))
	if err != nil {
		return nil, err
	}
	var out []slum.InstanceKey
	for _, r := range rs {
		out = append(out, r.Restarting()...)
	}
	return out, nil
}
