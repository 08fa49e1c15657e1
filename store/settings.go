package store

import (
	"context"
	"fmt"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/db"
)

func toSettings(r db.FleetSetting) slum.Settings {
	return slum.Settings{ProbeInterval: time.Duration(r.ProbeIntervalMs) * time.Millisecond,
		ProbeTimeout: time.Duration(r.ProbeTimeoutMs) * time.Millisecond, DeadAfter: int(r.DeadAfter),
		PartitionFraction: r.PartitionFraction, FailoverRate: int(r.FailoverRate),
		StableAfter: time.Duration(r.StableAfterMs) * time.Millisecond, Failback: slum.FailbackPolicy(r.Failback),
		FailbackAfter: time.Duration(r.FailbackAfterMs) * time.Millisecond,
		Rebalance:     slum.RebalancePolicy(r.Rebalance), RebalanceEvery: time.Duration(r.RebalanceEveryMs) * time.Millisecond}
}

func getSettings(ctx context.Context, q db.Querier) (slum.Settings, error) {
	r, err := q.GetSettings(ctx)
	if err != nil {
		return slum.Settings{}, fmt.Errorf("read fleet settings: %w", err)
	}
	return toSettings(r), nil
}

// Settings returns the fleet's settings.
func (s *Desired) Settings(ctx context.Context) (slum.Settings, error) {
	return getSettings(ctx, s.eng.Read())
}

// SetSettings replaces the fleet's settings; a running controller applies
// them at once.
func (s *Desired) SetSettings(ctx context.Context, set slum.Settings) (slum.Settings, error) {
	if err := set.Validate(); err != nil {
		return slum.Settings{}, fmt.Errorf("fleet settings: %w", err)
	}
	err := s.write(ctx, func(q db.Querier, now int64) error {
		old, err := getSettings(ctx, q)
		if err != nil {
			return err
		}
		if old == set {
			return nil
		}
		if err := setSettings(ctx, q, set, now); err != nil {
			return err
		}
		return event(ctx, q, now, "fleet", slum.ReasonSettings, "fleet settings changed")
	})
	return set, err
}

func setSettings(ctx context.Context, q db.Querier, set slum.Settings, now int64) error {
	err := q.UpdateSettings(ctx, db.UpdateSettingsParams{ProbeIntervalMs: set.ProbeInterval.Milliseconds(),
		ProbeTimeoutMs: set.ProbeTimeout.Milliseconds(), DeadAfter: int64(set.DeadAfter),
		PartitionFraction: set.PartitionFraction, FailoverRate: int64(set.FailoverRate),
		StableAfterMs: set.StableAfter.Milliseconds(), Failback: string(set.Failback),
		FailbackAfterMs: set.FailbackAfter.Milliseconds(), Rebalance: string(set.Rebalance),
		RebalanceEveryMs: set.RebalanceEvery.Milliseconds(), UpdatedAt: now})
	if err != nil {
		return fmt.Errorf("write fleet settings: %w", err)
	}
	return nil
}
