package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/slum-fleet/slum/desired"
)

// PassResult says what one pass found and did.
type PassResult struct {
	Servers   int
	Observed  int // servers whose state the pass could read
	Spawns    []Action
	Stops     []Action
	Holds     []Hold
	Unmanaged int
	Refused   bool // stops refused by the mass-stop guard
	Duration  time.Duration
}

// Pass runs one pass and waits for every server's poll, for tests,
// benchmarks and dry runs. With act false it only plans.
func (c *Controller) Pass(ctx context.Context, act bool) (*PassResult, error) {
	if c.q == nil {
		if err := c.start(ctx); err != nil {
			return nil, err
		}
	}
	if !act {
		return c.plan(ctx)
	}
	return c.pass(ctx, true)
}

// WaitIdle blocks until no action is queued or in flight, then writes
// what the finished actions reported.
func (c *Controller) WaitIdle(ctx context.Context) error {
	for c.q.depth() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return c.flush(ctx, nil)
}

// elsewhere answers DiffServer's question for a moved instance.
func (c *Controller) elsewhere(f *fleet) func(tenant, instance string) (string, bool, bool) {
	return func(tenant, instance string) (string, bool, bool) {
		d, ok := f.byKey[tenant+":"+instance]
		if !ok || d.DesiredState != desired.StateRunning {
			return "", false, false
		}
		if d.Mode == desired.ModeOnDemand {
			return d.ServerID, true, true
		}
		rt := c.servers[d.ServerID]
		if rt == nil || !rt.snapOK {
			return d.ServerID, false, true
		}
		_, running := rt.snap[d.Name]
		return d.ServerID, running, true
	}
}

// diffAll diffs every server. Servers that could not be read get no
// actions and their instances' phase is unknown. Called with c.mu held.
func (c *Controller) diffAll(f *fleet) (map[string]*ServerPlan, *PassResult) {
	res := &PassResult{Servers: len(f.servers)}
	plans := make(map[string]*ServerPlan, len(f.servers))
	where := c.elsewhere(f)
	for _, s := range f.servers {
		rt := c.servers[s.ID]
		if rt == nil || !rt.snapOK {
			continue
		}
		res.Observed++
		p := DiffServer(ServerInput{ServerID: s.ID, Desired: f.byServer[s.ID], Observed: rt.snap, Owned: c.ledger[s.ID], Elsewhere: where})
		plans[s.ID] = &p
		res.Spawns = append(res.Spawns, p.Spawns...)
		res.Stops = append(res.Stops, p.Stops...)
		res.Holds = append(res.Holds, p.Holds...)
		res.Unmanaged += len(p.Unmanaged)
	}
	// The mass-stop guard: an empty or wrong database must not empty the
	// fleet.
	managed := c.ledgerSize()
	if n := len(res.Stops); n > c.cfg.MaxStopFloor && float64(n) > c.cfg.MaxStopFraction*float64(managed) {
		res.Refused = true
	}
	return plans, res
}

// plan is a dry run: poll everything, diff, act on nothing.
func (c *Controller) plan(ctx context.Context) (*PassResult, error) {
	start := c.now()
	f, err := c.loadFleet(ctx)
	if err != nil {
		return nil, err
	}
	c.pollAll(ctx, f, true)
	c.mu.Lock()
	_, res := c.diffAll(f)
	c.mu.Unlock()
	res.Duration = c.now().Sub(start)
	return res, nil
}

// pass observes, diffs and dispatches once.
func (c *Controller) pass(ctx context.Context, waitAll bool) (*PassResult, error) {
	start := c.now()
	f, err := c.loadFleet(ctx)
	if err != nil {
		return nil, err
	}
	c.pollAll(ctx, f, waitAll)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	c.mu.Lock()
	plans, res := c.diffAll(f)
	if res.Refused {
		if c.lastRefusal != len(res.Stops) {
			msg := fmt.Sprintf("refused to stop %d of the %d instances slum placed (more than %.0f%%); fix the desired state, or rerun with a higher --max-stop-fraction",
				len(res.Stops), c.ledgerSize(), 100*c.cfg.MaxStopFraction)
			c.events = append(c.events, desired.Event{At: c.now(), Object: "fleet", Reason: "MassStopRefused", Message: msg})
			c.log.Error("mass stop refused", "stops", len(res.Stops), "placed", c.ledgerSize(), "max_fraction", c.cfg.MaxStopFraction)
			c.metrics.stopRefusals.Inc()
		}
		c.lastRefusal = len(res.Stops)
	} else {
		c.lastRefusal = 0
	}
	var record []desired.Placement
	for _, p := range plans {
		for _, r := range p.Record {
			if _, ok := c.ledger[r.ServerID][r.Name]; !ok {
				record = append(record, r)
			}
		}
	}
	c.mu.Unlock()

	// The ledger is written before any spawn is sent.
	recorded := true
	if err := c.store.RecordPlacements(ctx, record); err != nil {
		recorded = false
		c.log.Error("cannot record placements; spawns wait", "err", err)
	} else {
		c.mu.Lock()
		for _, r := range record {
			c.ledgerAdd(r)
		}
		c.mu.Unlock()
	}

	statuses := c.dispatch(f, plans, res, recorded)
	if err := c.flush(ctx, statuses); err != nil {
		c.log.Error("cannot write status", "err", err)
	}
	res.Duration = c.now().Sub(start)
	c.metrics.passDuration.Observe(res.Duration.Seconds())
	c.metrics.queueDepth.Set(float64(c.q.depth()))
	if n := len(res.Spawns) + len(res.Stops); n > 0 || res.Refused {
		c.log.Info("pass", "servers", res.Servers, "observed", res.Observed, "spawns", len(res.Spawns), "stops", len(res.Stops),
			"holds", len(res.Holds), "unmanaged", res.Unmanaged, "refused", res.Refused, "took", res.Duration)
	}
	return res, nil
}

// dispatch offers the plans' actions to the queue and computes statuses.
func (c *Controller) dispatch(f *fleet, plans map[string]*ServerPlan, res *PassResult, recorded bool) []desired.InstanceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []desired.InstanceStatus
	now := c.now()
	phases := map[string]int{}
	servers := map[Health]int{}
	unmanaged := 0
	for _, s := range f.servers {
		rt := c.servers[s.ID]
		if rt == nil {
			continue
		}
		servers[rt.health.state]++
		p, ok := plans[s.ID]
		if !ok {
			for i := range f.byServer[s.ID] {
				st := c.status(&f.byServer[s.ID][i], PhaseUnknown, "", rt.health.lastErr, 0)
				phases[st.Phase]++
				out = c.changed(out, st, now)
			}
			continue
		}
		keep := map[string]bool{}
		states := map[string]itemState{}
		if recorded {
			for _, a := range p.Spawns {
				keep[a.Name] = true
				states[a.Name] = c.q.offer(a, rt.snapAt, rt.key)
			}
		}
		if !res.Refused {
			for _, a := range p.Stops {
				keep[a.Name] = true
				states[a.Name] = c.q.offer(a, rt.snapAt, rt.key)
			}
		}
		c.q.retain(s.ID, keep)
		for _, o := range p.Observations {
			st := states[o.Instance.Name]
			phase, lastErr := o.Phase, st.lastErr
			if st.parked {
				phase = PhaseFailed
			}
			if o.Converged {
				m := c.memo[o.Instance.Key]
				m.obsGen = o.Instance.Generation
				c.memo[o.Instance.Key] = m
			}
			s := c.status(o.Instance, phase, o.Health, lastErr, st.attempts)
			phases[s.Phase]++
			out = c.changed(out, s, now)
		}
		// Report each unmanaged instance once, while it stays.
		seen := make(map[string]bool, len(p.Unmanaged))
		for _, name := range p.Unmanaged {
			seen[name] = true
			if !rt.unmanaged[name] {
				c.events = append(c.events, desired.Event{At: now, Object: "server/" + s.ID, Reason: "Unmanaged",
					Message: name + " runs there but slum did not place it; it is left alone"})
			}
		}
		rt.unmanaged = seen
		unmanaged += len(p.Unmanaged)
		c.forget = append(c.forget, p.Forget...)
		for _, fg := range p.Forget {
			delete(c.ledger[fg.ServerID], fg.Name)
		}
	}
	for _, h := range []Health{HealthUnknown, HealthOnline, HealthSuspect, HealthOffline, HealthUnauthorized} {
		c.metrics.servers.WithLabelValues(string(h)).Set(float64(servers[h]))
	}
	for _, ph := range []string{PhasePending, PhaseRunning, PhaseFailed, PhaseUnknown, PhaseStopped, PhaseIdle} {
		c.metrics.instances.WithLabelValues(ph).Set(float64(phases[ph]))
	}
	c.metrics.unmanaged.Set(float64(unmanaged))
	return out
}
