package api

import (
	"context"

	"github.com/slum-fleet/slum"
)

// fleetWithRestarts is the fleet the API's operations call: the store's,
// with rolling restarts run in the API's process (package rollout), so
// the server tokens they need never leave it.
type fleetWithRestarts struct {
	trafficFleet
	restarts slum.Restarts
}

var _ slum.Restarts = fleetWithRestarts{}

func (f fleetWithRestarts) Restart(ctx context.Context, spec slum.RestartSpec) (slum.Rollout, error) {
	return f.restarts.Restart(ctx, spec)
}

func (f fleetWithRestarts) ResumeRollout(ctx context.Context, id int64) (slum.Rollout, error) {
	return f.restarts.ResumeRollout(ctx, id)
}

func (f fleetWithRestarts) AbandonRollout(ctx context.Context, id int64) (slum.Rollout, error) {
	return f.restarts.AbandonRollout(ctx, id)
}

func (f fleetWithRestarts) GetRollout(ctx context.Context, id int64) (slum.Rollout, error) {
	return f.restarts.GetRollout(ctx, id)
}

func (f fleetWithRestarts) ListRollouts(ctx context.Context, n int64) ([]slum.Rollout, error) {
	return f.restarts.ListRollouts(ctx, n)
}
