package reconcile

import (
	"fmt"
	"time"

	"github.com/slum-fleet/slum"
)

// planEvents reports what is new in plan compared with the one before:
// copies slum did not place, unplaceable instances, failover states. The
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
		switch s.Failover {
		case slum.FailoverDone:
			add(slum.ServerRef(s.ServerID), slum.ReasonFailoverStarted, "server is dead: "+s.Reason)
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
