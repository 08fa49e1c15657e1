// Package rollout restarts a fleet's copies one at a time (or a few): the
// order (Plan, pure), and the runner that restarts each copy on its
// tenement server, waits for tenement to report it healthy, moves serving
// off a copy before its restart while another copy can serve, halts on
// the first copy that does not come back, and keeps its progress in the
// fleet's desired state so an interrupted rollout goes on where it
// stopped. Service is slum.Restarts over a store: what the CLI runs
// locally and the API runs for remote callers, with the server tokens.
package rollout

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/slum-fleet/slum"
)

// Fleet is what a plan is made from.
type Fleet struct {
	Instances []slum.Instance
	Tenants   []slum.TenantStatus // who serves each tenant now
}

// Plan is the order a rolling restart of spec restarts the fleet's
// copies in: tenant by tenant, each tenant's copies that do not serve
// before the one that does (so a spare has been restarted, and is
// healthy, when serving moves to it). Only instances that should run are
// restarted. ErrNotFound when the spec names a tenant, process or
// server that has no such copy.
func Plan(f Fleet, spec slum.RestartSpec) ([]slum.RolloutStep, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	serving := map[slum.InstanceKey]bool{}
	for _, ts := range f.Tenants {
		for _, c := range ts.Serving {
			serving[slum.KeyOf(ts.TenantID, c.Instance)] = true
		}
	}
	var steps []slum.RolloutStep
	for _, in := range f.Instances {
		if in.DesiredState != slum.StateRunning || in.ServerID == "" || !selects(spec, in) {
			continue
		}
		steps = append(steps, slum.RolloutStep{Instance: in.Key(), Server: in.ServerID, State: slum.StepPending, Serving: serving[in.Key()]})
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("restart %s: %w: no running copy", spec, slum.ErrNotFound)
	}
	slices.SortStableFunc(steps, func(a, b slum.RolloutStep) int {
		return cmp.Or(cmp.Compare(a.Instance.Tenant(), b.Instance.Tenant()), boolOrder(a.Serving, b.Serving),
			cmp.Compare(a.Instance, b.Instance))
	})
	return steps, nil
}

func selects(spec slum.RestartSpec, in slum.Instance) bool {
	switch {
	case spec.Tenant != "" && in.TenantID != spec.Tenant,
		spec.Server != "" && in.ServerID != spec.Server,
		spec.Process != "" && in.Process != spec.Process:
		return false
	}
	return true
}

func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// next are the pending steps to start now, with inFlight steps running:
// in order, at most parallel at once, never two of one tenant.
func next(steps []slum.RolloutStep, parallel int) []int {
	busy := map[string]bool{}
	running := 0
	for _, s := range steps {
		if s.State == slum.StepRestarting {
			busy[s.Instance.Tenant()] = true
			running++
		}
	}
	var out []int
	for i, s := range steps {
		if running >= parallel {
			break
		}
		if s.State != slum.StepPending || busy[s.Instance.Tenant()] {
			continue
		}
		busy[s.Instance.Tenant()] = true
		running++
		out = append(out, i)
	}
	return out
}
