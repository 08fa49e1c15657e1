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

// previewStops is what applying src would stop, from a dry run.
func previewStops(ctx context.Context, f slum.Fleet, src slum.FileSource, opt slum.ApplyOptions) []slum.StoppedCopy {
	opt.DryRun = true
	plan, err := f.Apply(ctx, src, opt)
	if err != nil || plan == nil {
		return nil // the apply itself reports what is wrong
	}
	return plan.Stops
}
