package rebalance

import (
	"context"
	"slices"
	"time"

	"github.com/slum-fleet/slum"
)

// Read builds a plan's input from a fleet (a store, or the API's client:
// it needs no server token), as the controller last reported it.
func Read(ctx context.Context, f slum.Fleet, now time.Time) (Input, error) {
	ss, err := f.ListServers(ctx)
	if err != nil {
		return Input{}, err
	}
	status, err := f.ListServerStatus(ctx)
	if err != nil {
		return Input{}, err
	}
	set, err := f.Settings(ctx)
	if err != nil {
		return Input{}, err
	}
	ts, err := f.ListTenants(ctx)
	if err != nil {
		return Input{}, err
	}
	serving, err := f.ListTenantStatus(ctx)
	if err != nil {
		return Input{}, err
	}
	ins, err := f.ListInstances(ctx)
	if err != nil {
		return Input{}, err
	}
	region := map[string]string{}
	for _, t := range ts {
		region[t.ID] = t.Region
	}
	serves := map[slum.InstanceKey]bool{}
	for _, st := range serving {
		for _, c := range st.Serving {
			serves[slum.KeyOf(st.TenantID, c.Instance)] = true
		}
	}
	in := Input{Servers: Servers(ss, status, now, set.StableAfter)}
	for _, i := range ins {
		if i.DesiredState != slum.StateRunning || i.ServerID == "" {
			continue
		}
		in.Copies = append(in.Copies, Copy{Key: i.Key(), Process: i.Process, Server: i.ServerID, MemoryMB: i.MemoryMB,
			Region: region[i.TenantID], Serving: serves[i.Key()]})
	}
	return in, nil
}

// Load is one server's share of the fleet, before and after a plan.
type Load struct {
	Server       string `json:"server"`
	Takes        bool   `json:"takes"`
	Why          string `json:"why,omitempty"`
	CapacityMB   int64  `json:"capacity_mb"`
	Instances    int    `json:"instances"`
	UsedMB       int64  `json:"used_mb"`
	InstancesNow int    `json:"instances_after"`
	UsedMBNow    int64  `json:"used_mb_after"`
}

// Loads is each server's load in in and after moves.
func Loads(in Input, moves []Move) []Load {
	after := Apply(in, moves)
	out := make([]Load, len(in.Servers))
	idx := map[string]int{}
	for i, s := range in.Servers {
		out[i] = Load{Server: s.ID, Takes: s.Takes, Why: s.Why, CapacityMB: s.CapacityMB}
		idx[s.ID] = i
	}
	for i, c := range in.Copies {
		if j, ok := idx[c.Server]; ok {
			out[j].Instances++
			out[j].UsedMB += c.MemoryMB
		}
		if j, ok := idx[after.Copies[i].Server]; ok {
			out[j].InstancesNow++
			out[j].UsedMBNow += c.MemoryMB
		}
	}
	return out
}

// Spread is the most and fewest instances a server that takes copies (or
// holds some) has: within one of each other is even.
func Spread(loads []Load, after bool) (most, fewest int) {
	var ns []int
	for _, l := range loads {
		n := l.Instances
		if after {
			n = l.InstancesNow
		}
		if l.Takes || n > 0 {
			ns = append(ns, n)
		}
	}
	if len(ns) == 0 {
		return 0, 0
	}
	return slices.Max(ns), slices.Min(ns)
}
