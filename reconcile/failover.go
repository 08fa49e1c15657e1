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
	// announced is, per server, the death whose failover an event told
	// (one FailoverStarted per failover, not per plan or re-death).
	announced map[string]time.Time
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

// diedOn is the server instance k ran on when that server died, until it
// runs again.
func (f *failovers) diedOn(k slum.InstanceKey) (string, bool) {
	d, ok := f.deadAt[k]
	return d.server, ok
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
	for _, o := range plan.Observations.All() {
		dead, ok := f.deadAt[o.Instance.Key]
		if !ok {
			continue
		}
		switch {
		case o.Phase() == slum.PhaseRunning && o.Instance.ServerID != dead.server: // elsewhere, home included
			took = append(took, now.Sub(dead.at))
			events = append(events, slum.Event{At: now, Object: slum.InstanceRef(o.Instance.Key), Reason: slum.ReasonReplaced,
				Message: fmt.Sprintf("runs on %s, %.2fs after %s was declared dead", o.Instance.ServerID, now.Sub(dead.at).Seconds(), dead.server)})
			delete(f.deadAt, o.Instance.Key)
		case o.Phase() == slum.PhaseRunning, now.Sub(dead.at) > time.Hour:
			delete(f.deadAt, o.Instance.Key)
		}
	}
	return took, events
}

// announce tells, once per death of a server, the failover it started:
// how many of its instances were just placed elsewhere and how many
// cannot be placed. A death that moves nothing (a server dead again with
// its instances elsewhere already) is not a failover and is not told.
// dead gives the time each dead server of the plan died.
func (f *failovers) announce(plan *Plan, moved map[string]int, dead func(server string) time.Time, now time.Time) []slum.Event {
	unplaceable := map[string]int{}
	for _, u := range plan.Unplaceable {
		unplaceable[u.From]++
	}
	var out []slum.Event
	for _, s := range plan.Servers {
		id := s.ServerID
		if s.Failover != slum.FailoverDone || moved[id]+unplaceable[id] == 0 {
			continue
		}
		at := dead(id)
		if last, ok := f.announced[id]; ok && last.Equal(at) {
			continue
		}
		if f.announced == nil {
			f.announced = map[string]time.Time{}
		}
		f.announced[id] = at
		msg := fmt.Sprintf("server is dead: %d of its instances placed elsewhere", moved[id])
		if n := unplaceable[id]; n > 0 {
			msg += fmt.Sprintf(", %d cannot be placed", n)
		}
		out = append(out, slum.Event{At: now, Object: slum.ServerRef(id), Reason: slum.ReasonFailoverStarted, Message: msg})
	}
	return out
}
