package reconcile

import (
	"context"
	"fmt"

	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/observed"
)

// maxSpawnEvents bounds the spawn events written per flush.
const maxSpawnEvents = 50

// exec performs one action.
func (c *Controller) exec(ctx context.Context, a Action) error {
	c.mu.Lock()
	rt := c.servers[a.ServerID]
	var client Client
	if rt != nil {
		client = rt.client
	}
	c.mu.Unlock()
	if client == nil {
		return fmt.Errorf("server %s: %w: no usable client", a.ServerID, observed.ErrUnavailable)
	}
	switch a.Kind {
	case Spawn:
		_, err := client.Spawn(ctx, a.Process, a.ID)
		return err
	case Stop:
		return client.Stop(ctx, a.Process, a.ID)
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

// done records an action's result.
func (c *Controller) done(a Action, err error, st itemState, idle bool) {
	result := "ok"
	switch {
	case err == nil:
	case st.parked:
		result = "permanent"
	default:
		result = "retry"
	}
	c.metrics.actions.WithLabelValues(string(a.Kind), result).Inc()
	c.mu.Lock()
	now := c.now()
	if a.Instance != "" && err != nil && c.fleet != nil {
		if d, ok := c.fleet.byKey[a.Instance]; ok && d.ServerID == a.ServerID {
			phase := PhasePending
			if st.parked {
				phase = PhaseFailed
			}
			c.statuses = c.changed(c.statuses, c.status(d, phase, "", st.lastErr, st.attempts), now)
		}
	}
	object := "server/" + a.ServerID + "/" + a.Name
	if a.Instance != "" {
		object = "instance/" + a.Instance
	}
	switch {
	case err == nil && a.Kind == Stop:
		c.forget = append(c.forget, desired.Placement{ServerID: a.ServerID, Name: a.Name})
		delete(c.ledger[a.ServerID], a.Name)
		c.events = append(c.events, desired.Event{At: now, Object: object, Reason: "Stopped", Message: fmt.Sprintf("stopped %s on %s: %s", a.Name, a.ServerID, a.Reason)})
	case err == nil && a.Kind == Spawn:
		// One event per spawn while they are few; a fleet converging
		// from empty gets a count instead (see flush).
		if c.spawned < maxSpawnEvents {
			c.spawned++
			c.events = append(c.events, desired.Event{At: now, Object: object, Reason: "Spawned", Message: "spawned " + a.Name + " on " + a.ServerID})
		} else {
			c.quiet++
		}
	case st.parked:
		c.events = append(c.events, desired.Event{At: now, Object: object, Reason: "Parked",
			Message: fmt.Sprintf("%s on %s failed permanently; waiting for its desired state or server to change: %v", a.Kind, a.ServerID, err)})
		c.log.Error("action parked", "kind", a.Kind, "server", a.ServerID, "name", a.Name, "err", err)
	case st.attempts == 1:
		c.events = append(c.events, desired.Event{At: now, Object: object, Reason: "Retrying",
			Message: fmt.Sprintf("%s on %s failed, retrying with backoff: %v", a.Kind, a.ServerID, err)})
		c.log.Warn("action failed", "kind", a.Kind, "server", a.ServerID, "name", a.Name, "attempts", st.attempts, "err", err)
	default:
		c.log.Debug("action failed", "kind", a.Kind, "server", a.ServerID, "name", a.Name, "attempts", st.attempts, "err", err)
	}
	c.mu.Unlock()
	if idle {
		c.kick()
	}
}
