package main

import (
	"context"

	"github.com/slum-fleet/slum"
)

// warnStops tells, before a change is made, which copies it will have the
// controller stop, and what a stop costs: every path that moves or removes
// instances (tenant move, server drain, apply, diff) says it alike.
func (a *app) warnStops(stops []slum.StoppedCopy) {
	for _, s := range stops {
		if s.Moved {
			a.warn("the copy of %s on %s will be stopped once its new copy runs: the stop deletes its data where the tenement service has storage_persist = false", s.Instance, s.Server)
		} else {
			a.warn("the copy of %s on %s will be stopped: the stop deletes its data where the tenement service has storage_persist = false", s.Instance, s.Server)
		}
	}
}

// stopsOfMoves are the old copies moving these instances stops.
func stopsOfMoves(ins []slum.Instance) []slum.StoppedCopy {
	out := make([]slum.StoppedCopy, len(ins))
	for i, in := range ins {
		out[i] = slum.StoppedCopy{Instance: in.Key(), Server: in.ServerID, Moved: true}
	}
	return out
}

// previewApply is a dry run of applying src: what the apply would stop,
// and, when it would change nothing, its plan. Then the apply is done
// already: an apply that changes nothing writes nothing, so it is the
// dry run (at 100,000 instances, a second read and diff of the fleet).
func previewApply(ctx context.Context, f slum.Fleet, src slum.FileSource, opt slum.ApplyOptions) (stops []slum.StoppedCopy, unchanged *slum.ChangeSet) {
	opt.DryRun = true
	plan, err := f.Apply(ctx, src, opt)
	if err != nil || plan == nil {
		return nil, nil // the apply itself reports what is wrong
	}
	if plan.Empty() {
		return nil, plan
	}
	return plan.Stops, nil
}
