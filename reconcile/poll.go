package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/observed"
)

// pollAll lists every server without a list call in flight. It waits for
// the servers that answered their last poll, up to PollWait (or, with
// waitAll, for every poll); the rest finish in the background and kick a
// pass when they do.
func (c *Controller) pollAll(ctx context.Context, f *fleet, waitAll bool) {
	var wg sync.WaitGroup
	c.mu.Lock()
	for _, s := range f.servers {
		rt := c.servers[s.ID]
		if rt == nil || rt.polling {
			continue
		}
		if rt.client == nil {
			prev, changed := rt.health.observe(c.now(), fmt.Errorf("%w: %v", observed.ErrUnauthorized, rt.clientErr), c.cfg.Health)
			rt.snapOK = false
			if changed {
				c.healthEvent(s.ID, prev, rt.health)
			}
			continue
		}
		healthy := rt.health.state == HealthOnline || rt.health.state == HealthUnknown
		if !healthy && !waitAll && c.now().Sub(rt.polledAt) < c.cfg.PollInterval {
			// A failing server is polled once per interval, not once per
			// pass: passes come as often as the healthy servers need.
			continue
		}
		rt.polling, rt.polledAt = true, c.now()
		wait := waitAll || healthy
		if wait {
			wg.Add(1)
		}
		go func(id string, rt *serverRT, client Client, wait bool) {
			if wait {
				defer wg.Done()
			}
			if ok := c.poll(ctx, id, rt, client); ok && !wait {
				c.kick() // act on what a late answer shows
			}
		}(s.ID, rt, rt.client, wait)
	}
	c.mu.Unlock()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	limit := c.cfg.PollWait
	if waitAll {
		limit = c.cfg.PollTimeout + time.Second
	}
	select {
	case <-done:
	case <-time.After(limit):
		// Stragglers kick a pass when they finish.
		go func() { <-done; c.kick() }()
	case <-ctx.Done():
	}
}

// poll lists one server and records what it found; it reports whether
// the list succeeded.
func (c *Controller) poll(ctx context.Context, id string, rt *serverRT, client Client) bool {
	if err := c.pollSem.Acquire(ctx, 1); err != nil {
		c.mu.Lock()
		rt.polling = false
		c.mu.Unlock()
		return false
	}
	start := c.now()
	pctx, cancel := context.WithTimeout(ctx, c.cfg.PollTimeout)
	list, err := client.List(pctx)
	cancel()
	c.pollSem.Release(1)
	c.metrics.pollDuration.Observe(c.now().Sub(start).Seconds())
	if ctx.Err() != nil && err != nil {
		c.mu.Lock()
		rt.polling = false
		c.mu.Unlock()
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rt.polling = false
	prev, changed := rt.health.observe(c.now(), err, c.cfg.Health)
	if changed {
		c.healthEvent(id, prev, rt.health)
	}
	if err != nil {
		rt.snapOK = false
		c.log.Warn("poll failed", "server", id, "health", rt.health.state, "err", err)
		return false
	}
	// Keep only what the diff reads, copied out of the answer's buffer.
	snap := make(map[string]string, len(list))
	for _, in := range list {
		snap[strings.Clone(in.Name)] = internHealth(in.Health)
	}
	rt.snap, rt.snapAt, rt.snapOK = snap, start, true
	return true
}

func (c *Controller) healthEvent(id string, prev Health, h *serverHealth) {
	msg := fmt.Sprintf("server is %s (was %s)", h.state, prev)
	if h.lastErr != "" && h.state != HealthOnline {
		msg += ": " + h.lastErr
	}
	reason := map[Health]string{HealthOnline: "ServerOnline", HealthSuspect: "ServerSuspect", HealthOffline: "ServerOffline",
		HealthUnauthorized: "ServerUnauthorized", HealthUnknown: "ServerUnknown"}[h.state]
	c.events = append(c.events, desired.Event{At: c.now(), Object: "server/" + id, Reason: reason, Message: msg})
	level := slog.LevelInfo
	if h.state != HealthOnline {
		level = slog.LevelWarn
	}
	c.log.Log(context.Background(), level, "server health changed", "server", id, "from", prev, "to", h.state, "err", h.lastErr)
}
