package reconcile

import (
	"fmt"
	"time"

	"github.com/slum-fleet/slum/desired"
)

// planEvents reports what is new in plan compared with the one before:
// copies slum did not place, unplaceable instances, failover states. The
// controller sees every plan (the reporter may skip some), so no
// passing state goes unreported.
func planEvents(prev, plan *Plan, now time.Time) []desired.Event {
	var out []desired.Event
	prevUnmanaged := map[string]bool{}
	prevFailover := map[string]desired.FailoverState{}
	prevUnplaceable := map[string]bool{}
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
	add := func(object string, reason desired.EventReason, msg string) {
		out = append(out, desired.Event{At: now, Object: object, Reason: reason, Message: msg})
	}
	for _, s := range plan.Servers {
		for _, n := range s.Unmanaged {
			if !prevUnmanaged[s.ServerID+"/"+n] {
				add("server/"+s.ServerID, desired.ReasonUnmanaged, n+" runs there but slum did not place it; it is left alone")
			}
		}
		if s.Failover == prevFailover[s.ServerID] {
			continue
		}
		switch s.Failover {
		case desired.FailoverDone:
			add("server/"+s.ServerID, desired.ReasonFailoverStarted, "server is dead: "+s.Reason)
		case desired.FailoverHeld:
			add("server/"+s.ServerID, desired.ReasonFailoverBlocked, "server is dead: "+s.Reason)
		case desired.FailoverFencing:
			add("server/"+s.ServerID, desired.ReasonFenced, "server is back: "+s.Reason)
		}
	}
	for _, u := range plan.Unplaceable {
		if !prevUnplaceable[u.Instance] {
			add("instance/"+u.Instance, desired.ReasonUnplaceable, fmt.Sprintf("server %s is dead and no server can take it: %s", u.From, u.Reason))
		}
	}
	return out
}
