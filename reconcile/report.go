package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/slum-fleet/slum/desired"
)

// flushLoop writes what finished actions report between passes.
func (c *Controller) flushLoop(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		pending := len(c.statuses) + len(c.events) + len(c.forget)
		c.mu.Unlock()
		if pending > 0 {
			if err := c.flush(ctx, nil); err != nil {
				c.log.Error("cannot write status", "err", err)
			}
		}
	}
}

func (c *Controller) status(d *Desired, phase, health, lastErr string, attempts int64) keyedStatus {
	return keyedStatus{d.Key, desired.InstanceStatus{TenantID: d.TenantID, InstanceID: d.ID, ServerID: d.ServerID, Phase: phase, Health: health,
		LastError: lastErr, Attempts: attempts, ObservedGeneration: c.memo[d.Key].obsGen}}
}

// statusMemo is what the controller remembers of each instance between
// passes: a fingerprint of the status last written (to write only
// changes) and the last generation it saw converged.
type statusMemo struct {
	written uint64
	obsGen  int64
}

func statusHash(st desired.InstanceStatus) uint64 {
	// FNV-1a, inline: this runs for every instance on every pass.
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	str := func(s string) {
		for i := 0; i < len(s); i++ {
			h = (h ^ uint64(s[i])) * prime
		}
		h = (h ^ 0xff) * prime
	}
	num := func(v int64) {
		for i := 0; i < 8; i++ {
			h = (h ^ uint64(byte(v>>(8*i)))) * prime
		}
	}
	str(st.TenantID)
	str(st.InstanceID)
	str(st.ServerID)
	str(st.Phase)
	str(st.Health)
	str(st.LastError)
	num(st.Attempts)
	num(st.ObservedGeneration)
	return h | 1 // never 0, which means "never written"
}

// internHealth shares the few words tenement uses.
func internHealth(h string) string {
	for _, w := range []string{"healthy", "unknown", "degraded", "unhealthy", "failed"} {
		if h == w {
			return w
		}
	}
	return strings.Clone(h)
}

// keyedStatus is a status with its instance's key.
type keyedStatus struct {
	key string
	desired.InstanceStatus
}

// changed appends st when it differs from what was last written.
func (c *Controller) changed(out []desired.InstanceStatus, ks keyedStatus, now time.Time) []desired.InstanceStatus {
	key, st := ks.key, ks.InstanceStatus
	m := c.memo[key]
	h := statusHash(st)
	if m.written == h {
		return out
	}
	m.written = h
	c.memo[key] = m
	st.UpdatedAt = now
	return append(out, st)
}

// flush writes statuses, events and forgotten placements, batched in one
// transaction each.
func (c *Controller) flush(ctx context.Context, statuses []desired.InstanceStatus) error {
	c.mu.Lock()
	if c.quiet > 0 {
		c.events = append(c.events, desired.Event{At: c.now(), Object: "fleet", Reason: "Spawned",
			Message: fmt.Sprintf("spawned %d more instances", c.quiet)})
	}
	c.spawned, c.quiet = 0, 0
	events, forget := c.events, c.forget
	c.events, c.forget = nil, nil
	statuses = append(c.statuses, statuses...)
	c.statuses = nil
	var servers []desired.ServerStatus
	now := c.now()
	for id, rt := range c.servers {
		servers = append(servers, desired.ServerStatus{ServerID: id, Health: string(rt.health.state), LastError: rt.health.lastErr,
			ConsecutiveFailures: int64(rt.health.failures), LastSeenAt: rt.health.lastSeen, Instances: int64(len(rt.snap)),
			Unmanaged: int64(len(rt.unmanaged)), UpdatedAt: now})
	}
	c.mu.Unlock()
	sort.Slice(servers, func(i, j int) bool { return servers[i].ServerID < servers[j].ServerID })
	err := c.store.ForgetPlacements(ctx, forget)
	if err != nil {
		c.mu.Lock()
		c.forget = append(c.forget, forget...)
		c.mu.Unlock()
	}
	return errors.Join(err, c.store.WriteReport(ctx, desired.Report{Instances: statuses, Servers: servers, Events: events}))
}
