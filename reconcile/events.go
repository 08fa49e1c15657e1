package reconcile

import (
	"fmt"
	"slices"
	"time"

	"github.com/slum-fleet/slum"
)

// maxSpawnEvents bounds the spawn events described per write; a fleet
// converging from empty gets a count instead.
const maxSpawnEvents = 50

// eventLog is a batch of events on its way to the database: the
// controller keeps one between plans, the reporter one between writes.
// Spawns past maxSpawnEvents are counted, not described (a fleet
// converging from empty builds no 100,000 messages to write a count).
type eventLog struct {
	events []slum.Event
	spawns int // spawn events in events
	more   int // spawns past the cap
}

// add logs events.
func (l *eventLog) add(es ...slum.Event) {
	for _, e := range es {
		if e.Reason == slum.ReasonSpawned && e.Object != slum.FleetRef {
			if l.spawns >= maxSpawnEvents {
				l.more++
				continue
			}
			l.spawns++
		}
		l.events = append(l.events, e)
	}
}

// spawned logs a spawn, building its event only when it is described.
func (l *eventLog) spawned(event func() slum.Event) {
	if l.spawns >= maxSpawnEvents {
		l.more++
		return
	}
	l.add(event())
}

// absorb adds another log's events and count.
func (l *eventLog) absorb(o eventLog) {
	l.add(o.events...)
	l.more += o.more
}

// take empties the log and returns what it held.
func (l *eventLog) take() eventLog {
	o := *l
	*l = eventLog{}
	return o
}

// written is what the log writes at now: its events and, when spawns
// were only counted, one event with their number.
func (l *eventLog) written(now time.Time) []slum.Event {
	if l.more == 0 {
		return l.events
	}
	return append(slices.Clip(l.events), slum.Event{At: now, Object: slum.FleetRef, Reason: slum.ReasonSpawned,
		Message: fmt.Sprintf("spawned %d more instances", l.more)})
}

// planEvents reports what is new in plan compared with the one before:
// copies slum did not place, unplaceable instances, failovers held and
// fencing. The
// controller sees every plan (the reporter may skip some), so no
// passing state goes unreported.
func planEvents(prev, plan *Plan, now time.Time) []slum.Event {
	var out []slum.Event
	prevUnmanaged := map[string]bool{}
	prevFailover := map[string]slum.FailoverState{}
	prevUnplaceable := map[slum.InstanceKey]bool{}
	if prev != nil {
		for _, s := range prev.Servers {
			prevFailover[s.ServerID] = s.Failover
			for _, n := range s.Unmanaged {
				prevUnmanaged[s.ServerID+"/"+n] = true
			}
		}
		for _, u := range prev.Unplaceable {
			prevUnplaceable[u.Instance] = true
		}
	}
	add := func(object slum.ObjectRef, reason slum.EventReason, msg string) {
		out = append(out, slum.Event{At: now, Object: object, Reason: reason, Message: msg})
	}
	for _, s := range plan.Servers {
		for _, n := range s.Unmanaged {
			if !prevUnmanaged[s.ServerID+"/"+n] {
				add(slum.ServerRef(s.ServerID), slum.ReasonUnmanaged, n+" runs there but slum did not place it; it is left alone")
			}
		}
		if s.Failover == prevFailover[s.ServerID] {
			continue
		}
		// A failover started is told by the controller, which knows what
		// it moved (see failovers.announce).
		switch s.Failover {
		case slum.FailoverHeld:
			add(slum.ServerRef(s.ServerID), slum.ReasonFailoverBlocked, "server is dead: "+s.Reason)
		case slum.FailoverFencing:
			add(slum.ServerRef(s.ServerID), slum.ReasonFenced, "server is back: "+s.Reason)
		}
	}
	for _, u := range plan.Unplaceable {
		if !prevUnplaceable[u.Instance] {
			add(slum.InstanceRef(u.Instance), slum.ReasonUnplaceable, fmt.Sprintf("server %s is dead and no server can take it: %s", u.From, u.Reason))
		}
	}
	return out
}
