package experiment

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/store"
)

// ObserveOptions describe an observation of an existing fleet.
type ObserveOptions struct {
	Store      *store.Store
	RouterAddr string
	Rate       float64
	Timeout    time.Duration
	// Duration bounds the observation.
	Duration    time.Duration
	ReturnGrace time.Duration
	Clock       clock.Clock
	Progress    func(Progress)
}

// Observe sends load through an existing fleet's router at every tenant
// and records what the first fault an operator causes costs, from the
// router's view (the load) and the controller's (the fleet database): it
// calls no tenement server itself. The fault's moment is its first sign:
// a failed request, or a server the controller no longer finds online.
// Observation ends once every server hit is online again and no request
// has failed for a while, when Duration is up, or when ctx ends.
func Observe(ctx context.Context, opt ObserveOptions) (*Report, error) {
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	clk, st := opt.Clock, opt.Store
	progress := func(phase string) {
		if opt.Progress != nil {
			opt.Progress(Progress{Fault: FaultObserved, Trial: 1, Trials: 1, Phase: phase})
		}
	}
	snap, err := st.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	targets := targetsOf(snap.Tenants, snap.Instances)
	if len(targets) == 0 {
		return nil, errors.New("no tenant of the fleet has an instance that should run: there is nothing to send load to")
	}
	rep := &Report{Observe: true, Backend: "observed", Servers: len(snap.Servers), Tenants: len(snap.Tenants), Settings: snap.Settings,
		TrialsAsked: 1, Faults: []Fault{FaultObserved}, Rate: opt.Rate, Started: time.Now(), Trials: []Trial{}, LeftBehind: []string{},
		LoadAverage: []string{loadAverage()}}
	obs := newObserver(st, clk, nil, nil, false)
	obs.start(ctx)
	defer obs.cancel()
	load := StartLoad(ctx, LoadOptions{RouterAddr: opt.RouterAddr, Targets: targets, Rate: opt.Rate, Timeout: opt.Timeout,
		Limit: opt.Duration + time.Minute, Clock: clk})
	rec := Record{Fault: FaultObserved, Trial: 1, LoadStart: clk.Now(), ReturnGrace: opt.ReturnGrace}
	progress("load running through " + opt.RouterAddr + "; cause the fault now (Ctrl-C ends)")
	rec.Rounds = watchUntilRecovered(ctx, opt, st, snap, obs, load, &rec, func() { progress("fault seen; recording until the fleet has recovered") })
	rec.LoadEnd = clk.Now()
	rec.Samples = load.Stop()
	w := obs.stop()
	rep.Finished = time.Now()
	rep.LoadAverage = append(rep.LoadAverage, loadAverage())
	if rec.FaultAt.IsZero() {
		rep.Interrupted = ctx.Err() != nil
		rec.FaultAt = rec.LoadStart
		rec.Err = "no fault was seen: no request failed and every server stayed online"
	}
	rep.WarmTenants = attribute(&rec, snap, w)
	interpret(&rec, w)
	rec.Marks = append(rec.Marks, Mark{At: rec.FaultAt, Kind: MarkFault, Subject: "first sign"})
	rep.Trials = append(rep.Trials, Measure(rec))
	return rep, nil
}

// watchUntilRecovered follows the fleet under load until the fault's
// first sign (noted in rec.FaultAt, and with seen) and then until every
// server it hit is back and no request has failed for a while, until
// opt.Duration is up, or until ctx ends. It returns what the servers ran,
// round by round, as the database said.
func watchUntilRecovered(ctx context.Context, opt ObserveOptions, st *store.Store, snap *slum.Snapshot, obs *observer, load *Load, rec *Record, seen func()) []ListRound {
	clk := opt.Clock
	names := map[slum.InstanceKey]string{} // → tenement name
	for _, in := range snap.Instances {
		names[in.Key()] = in.TenementName()
	}
	var rounds []ListRound
	deadline := rec.LoadStart.Add(opt.Duration)
	var backSince time.Time
	for clk.Now().Before(deadline) && ctx.Err() == nil {
		now := clk.Now()
		if r, ok := runningRound(ctx, st, names, now); ok {
			rounds = append(rounds, r)
		}
		w := obs.latest()
		if rec.FaultAt.IsZero() {
			if first := firstSign(w, load, rec.LoadStart); !first.IsZero() {
				rec.FaultAt = first
				seen()
			}
		} else {
			victims := hit(w.Health, rec.FaultAt)
			back := backAt(w.Health, victims, rec.FaultAt)
			calm := now.Sub(load.Status().LastFailure) > 2*time.Second
			switch {
			case len(victims) == 0 && calm && now.Sub(rec.FaultAt) > 5*time.Second:
				deadline = now // requests failed, no server was hit, and it passed
			case len(victims) > 0 && !back.IsZero() && calm:
				if backSince.IsZero() {
					backSince = now
				}
				if now.Sub(backSince) > opt.ReturnGrace+time.Second {
					deadline = now
				}
			default:
				backSince = time.Time{}
			}
		}
		select {
		case <-ctx.Done():
		case <-clk.After(100 * time.Millisecond):
		}
	}
	return rounds
}

// firstSign is a fault's first sign since start: the first failed
// request, or a server the controller no longer finds online; zero when
// there is none yet.
func firstSign(w *Watch, load *Load, start time.Time) time.Time {
	first := load.Status().FirstFailure
	for _, h := range w.Health {
		if h.Health != slum.HealthOnline && h.Health != slum.HealthUnknown && h.Seen.After(start) && (first.IsZero() || h.Since.Before(first)) {
			first = h.Since
		}
	}
	return first
}

// attribute works out from what was watched who the fault hit: the
// servers (rec.Victims), the tenants with copies on them (rec.Affected,
// rec.Warm when they have copies elsewhere too) and the copies displaced.
// It returns how many tenants have a warm spare.
func attribute(rec *Record, snap *slum.Snapshot, w Watch) (warmTenants int) {
	rec.Victims = hit(w.Health, rec.FaultAt)
	victim := map[string]bool{}
	for _, v := range rec.Victims {
		victim[v] = true
	}
	rec.Displaced, rec.Warm, rec.Down = map[string]string{}, map[string]bool{}, map[string]bool{}
	on, off := map[string]int{}, map[string]int{}
	for _, in := range snap.Instances {
		if in.DesiredState != slum.StateRunning || in.Mode != slum.ModeAlways {
			continue
		}
		if victim[in.ServerID] {
			on[in.TenantID]++
		} else {
			off[in.TenantID]++
		}
	}
	rec.Affected = map[string]bool{}
	for t := range on {
		rec.Affected[t] = true
		if off[t] > 0 {
			rec.Warm[t] = true
		}
	}
	for _, p := range w.Placements {
		if victim[p.From] {
			rec.Displaced[p.Name] = p.Key.Tenant()
		}
	}
	rec.HealAt = backAt(w.Health, rec.Victims, rec.FaultAt)
	for t, n := range off {
		if n+on[t] > 1 {
			warmTenants++
		}
	}
	for t, n := range on {
		if off[t] == 0 && n > 1 {
			warmTenants++
		}
	}
	return warmTenants
}

// hit lists the servers the controller found not online after t.
func hit(hs []HealthChange, t time.Time) []string {
	seen := map[string]bool{}
	for _, h := range hs {
		if h.Health != slum.HealthOnline && h.Health != slum.HealthUnknown && !h.Since.Before(t.Truncate(time.Millisecond)) {
			seen[h.Server] = true
		}
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// runningRound is the controller's view of where instances run, as a
// round of lists: each instance it last saw running, on its server.
func runningRound(ctx context.Context, st *store.Store, names map[slum.InstanceKey]string, now time.Time) (ListRound, bool) {
	sts, err := st.ListInstanceStatus(ctx)
	if err != nil {
		return ListRound{}, false
	}
	r := ListRound{At: now, Lists: map[string][]string{}}
	for _, s := range sts {
		if s.Phase == slum.PhaseRunning {
			if n, ok := names[s.Key()]; ok {
				r.Lists[s.ServerID] = append(r.Lists[s.ServerID], n)
			}
		}
	}
	return r, true
}
