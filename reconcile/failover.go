package reconcile

import (
	"fmt"
	"time"

	"github.com/slum-fleet/slum"
)

// FailoverRecord is when a server's failover started.
type FailoverRecord struct {
	Server string
	At     time.Time
}

// failovers is the controller's memory of failovers: when each started
// lately (the planner's rate limit reads them) and, for every instance of
// a server that died, that death, until the instance runs again (how long
// that took is the failover's time).
type failovers struct {
	started []FailoverRecord
	deadAt  map[slum.InstanceKey]death
}

// death is a server's death, as the instances that ran on it remember it
// until they run elsewhere (an instance failed over twice has another
// home server than the one that died).
type death struct {
	server string
	at     time.Time
}

// failoverMemory is how long a started failover counts for the rate limit.
const failoverMemory = time.Minute

// recent returns the failovers started within failoverMemory of now,
// forgetting older ones.
func (f *failovers) recent(now time.Time) []FailoverRecord {
	keep := f.started[:0]
	for _, r := range f.started {
		if now.Sub(r.At) < failoverMemory {
			keep = append(keep, r)
		}
	}
	f.started = keep
	return f.started
}

// start records the failovers of servers started at now.
func (f *failovers) start(servers []string, now time.Time) {
	for _, id := range servers {
		f.started = append(f.started, FailoverRecord{Server: id, At: now})
	}
}

// died remembers the death of the server instances ran on.
func (f *failovers) died(keys []slum.InstanceKey, server string, at time.Time) {
	if f.deadAt == nil {
		f.deadAt = map[slum.InstanceKey]death{}
	}
	for _, k := range keys {
		f.deadAt[k] = death{server: server, at: at}
	}
}

// replaced times failovers from a plan's observations: each instance of
// a dead server that now runs elsewhere yields how long it took and an
// event. An instance running again where it died, or dead for over an
// hour, is forgotten.
func (f *failovers) replaced(plan *Plan, now time.Time) (took []time.Duration, events []slum.Event) {
	if len(f.deadAt) == 0 {
		return nil, nil
	}
	for _, o := range plan.Observations {
		dead, ok := f.deadAt[o.Instance.Key]
		if !ok {
			continue
		}
		switch {
		case o.Phase == slum.PhaseRunning && o.Instance.ServerID != dead.server: // elsewhere, home included
			took = append(took, now.Sub(dead.at))
			events = append(events, slum.Event{At: now, Object: slum.InstanceRef(o.Instance.Key), Reason: slum.ReasonReplaced,
				Message: fmt.Sprintf("runs on %s, %.2fs after %s was declared dead", o.Instance.ServerID, now.Sub(dead.at).Seconds(), dead.server)})
			delete(f.deadAt, o.Instance.Key)
		case o.Phase == slum.PhaseRunning, now.Sub(dead.at) > time.Hour:
			delete(f.deadAt, o.Instance.Key)
		}
	}
	return took, events
}
