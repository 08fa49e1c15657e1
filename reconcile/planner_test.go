package reconcile

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/names"
	"github.com/slum-fleet/slum/observed"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// srv describes a server as a plan sees it. Times are relative to t0.
type srv struct {
	id, region string
	health     slum.Health   // default online
	unlisted   bool          // its last list failed
	runs       []string      // tenement names it lists, healthy unless "name=health"
	lastDead   time.Duration // ago; 0: never dead
	since      time.Duration // in its health for this long; default 1h
	state      slum.ServerState
	capacity   int64 // MB; default 1000
}

type tnt struct {
	id, region string
	failover   slum.FailoverPolicy
	serving    slum.ServingPolicy
	data       slum.DataPolicy
}

// ins describes an instance: key "tenant:id" on server, process api.
type ins struct {
	key, server, home string
	process           string
	stopped, onDemand bool
	rank, gen, mem    int64
	updated           time.Duration // ago; default 1h
}

type scenario struct {
	servers   []srv
	tenants   []tnt
	instances []ins
	ledger    []string // "server/name", touched 1h ago; "server/name@now" touched at t0
	busy      []string
	serving   map[string][]string // tenant → instance ids that served, on their servers
	failovers []FailoverRecord
	holds     []slum.Hold
	removed   []string // instance keys removed on purpose
	settings  func(*slum.Settings)
	guard     *Guard
	diedOn    map[string]string // instance key → the server it ran on when that died
}

func name(key, process string) string {
	t, i, _ := strings.Cut(key, ":")
	if process == "" {
		process = "api"
	}
	return process + ":" + t + "--" + i
}

func (sc scenario) input() Input {
	snap := &slum.Snapshot{Revision: 7, Settings: slum.DefaultSettings(), Holds: sc.holds}
	for _, k := range sc.removed {
		t, i, _ := strings.Cut(k, ":")
		snap.Removed = append(snap.Removed, slum.KeyOf(t, i))
	}
	if sc.settings != nil {
		sc.settings(&snap.Settings)
	}
	obs := sc.observe(snap)
	sc.addInstances(snap)
	ledger := sc.ledgerOf()
	guard := Guard{Fraction: 0.5, Floor: 10}
	if sc.guard != nil {
		guard = *sc.guard
	}
	in := Input{Now: t0, Fleet: NewFleet(snap), Observed: obs, Ledger: ledger, Serving: sc.servingOf(snap),
		Failovers: sc.failovers, Guard: guard}
	if sc.diedOn != nil {
		in.DiedOn = func(k slum.InstanceKey) (string, bool) { s, ok := sc.diedOn[string(k)]; return s, ok }
	}
	return in
}

// observe adds the scenario's servers to snap and returns what each was
// observed running.
func (sc scenario) observe(snap *slum.Snapshot) map[string]*observed.Snapshot {
	obs := map[string]*observed.Snapshot{}
	for _, s := range sc.servers {
		st := s.state
		if st == "" {
			st = slum.ServerActive
		}
		capacity := s.capacity
		if capacity == 0 {
			capacity = 1000
		}
		snap.Servers = append(snap.Servers, slum.Server{ID: s.id, Region: s.region, CapacityMB: capacity, State: st, URL: "http://" + s.id, Domain: s.id + ".test"})
		h := s.health
		if h == "" {
			h = slum.HealthOnline
		}
		since := s.since
		if since == 0 {
			since = time.Hour
		}
		hs := slum.HealthState{Health: h, Since: t0.Add(-since)}
		if s.lastDead != 0 {
			hs.LastDead = t0.Add(-s.lastDead)
		}
		if h == slum.HealthUnknown {
			continue
		}
		runs := map[string]slum.InstanceHealth{}
		for _, n := range s.runs {
			n, h, ok := strings.Cut(n, "=")
			if !ok {
				h = string(slum.InstanceHealthy)
			}
			runs[n] = slum.InstanceHealth(h)
		}
		obs[s.id] = &observed.Snapshot{Server: s.id, Health: hs, Listed: !s.unlisted && h != slum.HealthDead,
			ListedAt: t0.Add(-time.Second), Instances: runs}
	}
	sort.Slice(snap.Servers, func(i, j int) bool { return snap.Servers[i].ID < snap.Servers[j].ID })
	return obs
}

// addInstances adds the scenario's tenants and instances to snap.
func (sc scenario) addInstances(snap *slum.Snapshot) {
	seenTenant := map[string]bool{}
	for _, t := range sc.tenants {
		seenTenant[t.id] = true
		fo, sv := t.failover, t.serving
		if fo == "" {
			fo = slum.FailoverMove
		}
		if sv == "" {
			sv = slum.ServingOne
		}
		data := t.data
		if data == "" {
			data = slum.DataLocal
		}
		snap.Tenants = append(snap.Tenants, slum.Tenant{ID: t.id, Domain: t.id + ".example.com", Region: t.region, Failover: fo, Serving: sv, Data: data})
	}
	for _, in := range sc.instances {
		tenant, id, _ := strings.Cut(in.key, ":")
		if !seenTenant[tenant] {
			seenTenant[tenant] = true
			snap.Tenants = append(snap.Tenants, slum.Tenant{ID: tenant, Domain: tenant + ".example.com", Failover: slum.FailoverMove, Serving: slum.ServingOne})
		}
		process := in.process
		if process == "" {
			process = "api"
		}
		home := in.home
		if home == "" {
			home = in.server
		}
		gen, mem := in.gen, in.mem
		if gen == 0 {
			gen = 1
		}
		if mem == 0 {
			mem = 100
		}
		updated := in.updated
		if updated == 0 {
			updated = time.Hour
		}
		i := slum.Instance{TenantID: tenant, ID: id, Process: process, ServerID: in.server, HomeServerID: home, MemoryMB: mem,
			DesiredState: slum.StateRunning, Mode: slum.ModeAlways, Rank: in.rank, Generation: gen, UpdatedAt: t0.Add(-updated)}
		if in.stopped {
			i.DesiredState = slum.StateStopped
		}
		if in.onDemand {
			i.Mode = slum.ModeOnDemand
		}
		snap.Instances = append(snap.Instances, i)
	}
	sort.Slice(snap.Tenants, func(i, j int) bool { return snap.Tenants[i].ID < snap.Tenants[j].ID })
}

func (sc scenario) ledgerOf() *Ledger {
	ledger := NewLedger()
	for _, e := range sc.ledger {
		touched := t0.Add(-time.Hour)
		if strings.HasSuffix(e, "@now") {
			e, touched = strings.TrimSuffix(e, "@now"), t0
		}
		server, n, _ := strings.Cut(e, "/")
		if _, _, _, ok := names.ParseTenementName(n); !ok {
			panic("bad ledger name " + n)
		}
		_, tenant, inst, _ := names.ParseTenementName(n)
		ledger.Add(slum.Placement{ServerID: server, Name: n, TenantID: tenant, InstanceID: inst}, touched)
	}
	for _, b := range sc.busy {
		server, n, _ := strings.Cut(b, "/")
		ledger.SetBusy(server, n, true)
	}
	return ledger
}

func (sc scenario) servingOf(snap *slum.Snapshot) map[string]Serving {
	serving := map[string]Serving{}
	for tenant, ids := range sc.serving {
		var copies []slum.CopyRef
		for _, id := range ids {
			if inst, server, ok := strings.Cut(id, "@"); ok {
				copies = append(copies, slum.CopyRef{Instance: inst, Server: server})
				continue
			}
			for _, in := range snap.Instances {
				if in.TenantID == tenant && in.ID == id {
					copies = append(copies, slum.CopyRef{Instance: id, Server: in.ServerID})
				}
			}
		}
		serving[tenant] = NewServing(tenant, copies, nil, t0.Add(-time.Hour))
	}
	return serving
}

func keys(as []Action) []string {
	out := []string{}
	for _, a := range as {
		k := a.Key()
		if a.Fence {
			k += " (fence)"
		}
		out = append(out, k)
	}
	return out
}

func moves(rs []slum.Reschedule) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s %s->%s", r.Key(), r.From, r.To))
	}
	return out
}

func phases(p *Plan) map[string]slum.Phase {
	out := map[string]slum.Phase{}
	for _, o := range p.Observations.All() {
		out[string(o.Instance.Key)] = o.Phase()
	}
	return out
}

func servingOf(p *Plan, tenant string) string {
	ids := func(cs []slum.CopyRef) string {
		var out []string
		for _, c := range cs {
			out = append(out, c.String())
		}
		return strings.Join(out, ",")
	}
	for _, s := range p.Serving.All() {
		if s.Tenant == tenant {
			return ids(s.Serving()) + "|" + ids(s.Spares())
		}
	}
	return "?"
}

func heldKinds(p *Plan) []slum.HoldKind {
	out := []slum.HoldKind{}
	for _, h := range p.Held {
		out = append(out, h.Kind)
	}
	return out
}

func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got == nil {
		got = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func TestPlannerConverges(t *testing.T) {
	a, b, c := name("a:prod", ""), name("b:prod", ""), name("c:prod", "")
	cases := []struct {
		name   string
		sc     scenario
		check  func(t *testing.T, p *Plan)
		spawns []string
		stops  []string
		waits  []string
		forget []string
		phases map[string]slum.Phase
	}{{
		name:   "absent and desired: recorded, then spawned",
		sc:     scenario{servers: []srv{{id: "s1"}}, instances: []ins{{key: "a:prod", server: "s1"}}},
		spawns: []string{"s1/" + a},
		phases: map[string]slum.Phase{"a:prod": slum.PhasePending},
		check: func(t *testing.T, p *Plan) {
			if len(p.Record) != 1 || p.Record[0].Name != a {
				t.Errorf("record %+v", p.Record)
			}
		},
	}, {
		name:   "running: nothing to do",
		sc:     scenario{servers: []srv{{id: "s1", runs: []string{a}}}, instances: []ins{{key: "a:prod", server: "s1"}}, ledger: []string{"s1/" + a}},
		phases: map[string]slum.Phase{"a:prod": slum.PhaseRunning},
	}, {
		name:   "on-demand and absent: idle, never spawned",
		sc:     scenario{servers: []srv{{id: "s1"}}, instances: []ins{{key: "a:prod", server: "s1", onDemand: true}}, ledger: []string{"s1/" + a}},
		phases: map[string]slum.Phase{"a:prod": slum.PhaseIdle},
	}, {
		name:   "desired stopped and running: stopped",
		sc:     scenario{servers: []srv{{id: "s1", runs: []string{a}}}, instances: []ins{{key: "a:prod", server: "s1", stopped: true}}, ledger: []string{"s1/" + a}},
		stops:  []string{"s1/" + a},
		phases: map[string]slum.Phase{"a:prod": slum.PhasePending},
	}, {
		name: "what slum did not place is never stopped",
		sc: scenario{servers: []srv{{id: "s1", runs: []string{a, "api:other", b}}},
			instances: []ins{{key: "b:prod", server: "s1", stopped: true}}},
		check: func(t *testing.T, p *Plan) {
			same(t, "unmanaged", p.Servers[0].Unmanaged, []string{a, b, "api:other"})
		},
	}, {
		name:  "placed by slum and no longer desired: stopped",
		sc:    scenario{servers: []srv{{id: "s1", runs: []string{a}}}, ledger: []string{"s1/" + a}},
		stops: []string{"s1/" + a},
		check: func(t *testing.T, p *Plan) {
			if !p.Stops[0].Guarded || p.Servers[0].PendingStops != 1 {
				t.Errorf("stop %+v, pending %d", p.Stops[0], p.Servers[0].PendingStops)
			}
		},
	}, {
		name: "moved: the old copy waits for the new one",
		sc: scenario{servers: []srv{{id: "s1", runs: []string{a}}, {id: "s2"}}, instances: []ins{{key: "a:prod", server: "s2", updated: time.Second}},
			ledger: []string{"s1/" + a}},
		spawns: []string{"s2/" + a},
		waits:  []string{"s1/" + a},
	}, {
		name: "moved and running there: the old copy is stopped, unguarded",
		sc: scenario{servers: []srv{{id: "s1", runs: []string{a}}, {id: "s2", runs: []string{a}}}, instances: []ins{{key: "a:prod", server: "s2"}},
			ledger: []string{"s1/" + a, "s2/" + a}},
		stops: []string{"s1/" + a},
		check: func(t *testing.T, p *Plan) {
			if p.Stops[0].Guarded {
				t.Error("a move counted against the mass-stop guard")
			}
		},
	}, {
		name: "moved and running there, but the old copy served: routers follow first",
		sc: scenario{servers: []srv{{id: "s1", runs: []string{a}}, {id: "s2", runs: []string{a}}}, instances: []ins{{key: "a:prod", server: "s2"}},
			ledger: []string{"s1/" + a, "s2/" + a}, serving: map[string][]string{"a": {"prod@s1"}}},
		waits: []string{"s1/" + a},
		check: func(t *testing.T, p *Plan) {
			if got := servingOf(p, "a"); got != "prod@s2|" {
				t.Errorf("serving %s, want the new copy", got)
			}
		},
	}, {
		name:   "a copy gone since it was touched is forgotten",
		sc:     scenario{servers: []srv{{id: "s1"}}, ledger: []string{"s1/" + a}},
		forget: []string{"s1/" + a},
		check: func(t *testing.T, p *Plan) {
			// Whose copy it was comes from its name: the tombstone of a
			// removed instance goes with it.
			if f := p.Forget[0]; f.TenantID != "a" || f.InstanceID != "prod" {
				t.Errorf("forgotten %+v, want tenant a, instance prod", f)
			}
		},
	}, {
		name: "a copy touched after the list, or busy, is not forgotten (a spawn may land)",
		sc:   scenario{servers: []srv{{id: "s1"}}, ledger: []string{"s1/" + a + "@now", "s1/" + b}, busy: []string{"s1/" + b}},
	}, {
		name: "an unreachable server: no actions, instances unknown, its pending stops counted",
		sc: scenario{servers: []srv{{id: "s1", health: slum.HealthSuspect, unlisted: true}},
			instances: []ins{{key: "a:prod", server: "s1"}}, ledger: []string{"s1/" + b, "s1/" + c}},
		phases: map[string]slum.Phase{"a:prod": slum.PhaseUnknown},
		check: func(t *testing.T, p *Plan) {
			if r := p.Servers[0]; r.PendingStops != 2 || r.Listed {
				t.Errorf("report %+v", r)
			}
		},
	}, {
		name: "a failed-over instance is spawned where it now is, saying so",
		sc:   scenario{servers: []srv{{id: "s1"}, {id: "s2"}}, instances: []ins{{key: "a:prod", server: "s2", home: "s1"}}},
		check: func(t *testing.T, p *Plan) {
			if len(p.Spawns) != 1 || p.Spawns[0].Reason != "failed over from s1" || p.Observations.At(0).Message != "failed over from s1" {
				t.Errorf("spawns %+v obs %+v", p.Spawns, p.Observations.Slice())
			}
		},
		spawns: []string{"s2/" + a},
	}, {
		name: "failed over a second time, it says from where it ran, not from its home",
		sc: scenario{servers: []srv{{id: "s1"}, {id: "s2"}, {id: "s3", health: slum.HealthDead}},
			instances: []ins{{key: "a:prod", server: "s2", home: "s1"}}, diedOn: map[string]string{"a:prod": "s3"}},
		check: func(t *testing.T, p *Plan) {
			if len(p.Spawns) != 1 || p.Spawns[0].Reason != "failed over from s3" || p.Observations.At(0).Message != "failed over from s3" {
				t.Errorf("spawns %+v obs %+v", p.Spawns, p.Observations.Slice())
			}
		},
		spawns: []string{"s2/" + a},
	}, {
		name: "the same instance's copy gone after it ran there (tenement restarted) is respawned, not failed over",
		sc: scenario{servers: []srv{{id: "s1"}, {id: "s2"}}, instances: []ins{{key: "a:prod", server: "s2", home: "s1"}},
			ledger: []string{"s2/" + a}},
		check: func(t *testing.T, p *Plan) {
			if len(p.Spawns) != 1 || p.Spawns[0].Reason != "desired running and absent" {
				t.Errorf("spawns %+v obs %+v", p.Spawns, p.Observations.Slice())
			}
		},
		spawns: []string{"s2/" + a},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Planner{}.Plan(c.sc.input())
			same(t, "spawns", keys(p.Spawns), c.spawns)
			same(t, "stops", keys(p.Stops), c.stops)
			var waits []string
			for _, w := range p.Waits {
				waits = append(waits, w.Key())
			}
			same(t, "waits", waits, c.waits)
			var forget []string
			for _, f := range p.Forget {
				forget = append(forget, f.ServerID+"/"+f.Name)
			}
			same(t, "forget", forget, c.forget)
			got := phases(p)
			for k, want := range c.phases {
				if got[k] != want {
					t.Errorf("phase of %s: %s, want %s", k, got[k], want)
				}
			}
			if len(p.Reschedules) != 0 || len(p.Held) != 0 {
				t.Errorf("unexpected reschedules %v or holds %v", moves(p.Reschedules), heldKinds(p))
			}
			if c.check != nil {
				c.check(t, p)
			}
		})
	}
}

func TestPlannerFailover(t *testing.T) {
	a, b := name("a:prod", ""), name("a:backup", "")
	three := func(dead ...string) []srv {
		out := []srv{{id: "s1", region: "eu"}, {id: "s2", region: "eu"}, {id: "s3", region: "us"}}
		for i := range out {
			if slices.Contains(dead, out[i].id) {
				out[i].health = slum.HealthDead
			}
		}
		return out
	}
	cases := []struct {
		name        string
		sc          scenario
		reschedules []string
		unplaceable []string
		held        []slum.HoldKind
		failingOver []string
		stops       []string
		phases      map[string]slum.Phase
		serving     map[string]string
		check       func(t *testing.T, p *Plan)
	}{{
		name: "a dead server's instances move, to the tenant's region first",
		sc: scenario{servers: three("s1"), tenants: []tnt{{id: "a", region: "us"}, {id: "b", region: "eu"}},
			instances: []ins{{key: "a:prod", server: "s1"}, {key: "b:prod", server: "s1"}}},
		reschedules: []string{"a:prod s1->s3", "b:prod s1->s2"},
		failingOver: []string{"s1"},
		phases:      map[string]slum.Phase{"a:prod": slum.PhasePending},
		check: func(t *testing.T, p *Plan) {
			if p.Servers[0].Failover != slum.FailoverDone {
				t.Errorf("s1 report %+v", p.Servers[0])
			}
		},
	}, {
		name: "never beside another copy of the tenant's process",
		sc: scenario{servers: three("s1"), instances: []ins{{key: "a:prod", server: "s1"}, {key: "a:backup", server: "s2", rank: 1}},
			tenants: []tnt{{id: "a", region: "eu"}}},
		reschedules: []string{"a:prod s1->s3"},
		failingOver: []string{"s1"},
	}, {
		name: "not onto cordoned or suspect servers, nor (while another can) onto one back lately from an outage that moved instances",
		sc: scenario{servers: []srv{{id: "s1", health: slum.HealthDead}, {id: "s2", state: slum.ServerCordoned}, {id: "s3", health: slum.HealthSuspect}, {id: "s4", lastDead: 20 * time.Second, since: 10 * time.Second}, {id: "s5"}, {id: "s6"}, {id: "s7"}},
			instances: []ins{{key: "a:prod", server: "s1"}, {key: "b:prod", server: "s7", home: "s4"}}},
		reschedules: []string{"a:prod s1->s5"},
		failingOver: []string{"s1"},
	}, {
		name: "stable_after orders the choice, never vetoes it: a server back lately is used when no other can take it",
		sc: scenario{servers: []srv{{id: "s1", health: slum.HealthDead, since: 2 * time.Second}, {id: "s2", lastDead: 20 * time.Second, since: 10 * time.Second}, {id: "s3", state: slum.ServerCordoned}},
			instances: []ins{{key: "a:prod", server: "s1"}, {key: "b:prod", server: "s3", home: "s2"}}},
		reschedules: []string{"a:prod s1->s2"},
		failingOver: []string{"s1"},
	}, {
		name: "servers back from a held partition (nothing moved) are trusted at once: the crash of the third fails over",
		sc: scenario{servers: []srv{{id: "s1", health: slum.HealthDead, since: time.Second},
			{id: "s2", lastDead: 9 * time.Second, since: 4 * time.Second}, {id: "s3", lastDead: 9 * time.Second, since: 4 * time.Second}},
			instances: []ins{{key: "a:prod", server: "s1"}, {key: "b:prod", server: "s1"}}},
		reschedules: []string{"a:prod s1->s2", "b:prod s1->s3"},
		failingOver: []string{"s1"},
	}, {
		name:   "failover none: down with its server",
		sc:     scenario{servers: three("s1"), tenants: []tnt{{id: "a", failover: slum.FailoverNone}}, instances: []ins{{key: "a:prod", server: "s1"}}},
		phases: map[string]slum.Phase{"a:prod": slum.PhaseDown},
	}, {
		name: "no room anywhere: unplaceable, with the reason",
		sc: scenario{servers: []srv{{id: "s1", health: slum.HealthDead}, {id: "s2", capacity: 100}, {id: "s3", capacity: 100}},
			instances: []ins{{key: "a:prod", server: "s1", mem: 500}}},
		unplaceable: []string{"a:prod"},
		failingOver: []string{"s1"},
		phases:      map[string]slum.Phase{"a:prod": slum.PhaseUnplaceable},
		check: func(t *testing.T, p *Plan) {
			if !strings.Contains(p.Observations.At(0).Message, "2 without 500 MB free") {
				t.Errorf("message %q", p.Observations.At(0).Message)
			}
		},
	}, {
		name:   "most servers dead at once: a partition; nothing moves, the plan is held",
		sc:     scenario{servers: three("s1", "s2"), instances: []ins{{key: "a:prod", server: "s1"}}},
		held:   []slum.HoldKind{slum.HoldPartition},
		phases: map[string]slum.Phase{"a:prod": slum.PhaseDown},
		check: func(t *testing.T, p *Plan) {
			h := p.Held[0]
			if !slices.Equal(h.Servers, []string{"s1", "s2"}) || len(h.Reschedules) != 1 || !strings.Contains(h.Summary, "2 of 3 servers") {
				t.Errorf("held %+v", h)
			}
		},
	}, {
		name: "servers failing together count together: one dead, one on its way",
		sc: scenario{servers: []srv{{id: "s1", health: slum.HealthDead}, {id: "s2", health: slum.HealthSuspect, unlisted: true}, {id: "s3"}},
			instances: []ins{{key: "a:prod", server: "s1"}}},
		held: []slum.HoldKind{slum.HoldPartition},
	}, {
		name: "a partition healing server by server: the last still cut off are not failed over",
		sc: scenario{servers: []srv{{id: "s1", health: slum.HealthDead, since: 20 * time.Second},
			{id: "s2", lastDead: 20 * time.Second, since: 5 * time.Second}, {id: "s3", lastDead: 19 * time.Second, since: 3 * time.Second},
			{id: "s4"}, {id: "s5"}}, instances: []ins{{key: "a:prod", server: "s1"}}},
		held:   []slum.HoldKind{slum.HoldPartition},
		phases: map[string]slum.Phase{"a:prod": slum.PhaseDown},
		check: func(t *testing.T, p *Plan) {
			if h := p.Held[0]; !strings.Contains(h.Summary, "3 of 5 servers") || !strings.Contains(h.Summary, "2 of them came back") {
				t.Errorf("held %+v", h)
			}
		},
	}, {
		name: "the same, once the others have been back for stable_after: it fails over",
		sc: scenario{servers: []srv{{id: "s1", health: slum.HealthDead, since: 50 * time.Second},
			{id: "s2", lastDead: 50 * time.Second, since: 35 * time.Second}, {id: "s3", lastDead: 49 * time.Second, since: 33 * time.Second},
			{id: "s4"}, {id: "s5"}}, instances: []ins{{key: "a:prod", server: "s1"}}},
		reschedules: []string{"a:prod s1->s2"},
		failingOver: []string{"s1"},
	}, {
		name: "a server that died and came back before this one died does not count with it",
		sc: scenario{servers: []srv{{id: "s1", health: slum.HealthDead, since: 2 * time.Second},
			{id: "s2", lastDead: 20 * time.Second, since: 10 * time.Second}, {id: "s3"}},
			instances: []ins{{key: "a:prod", server: "s1"}, {key: "b:prod", server: "s3", home: "s2"}}},
		reschedules: []string{"a:prod s1->s3"},
		failingOver: []string{"s1"},
	}, {
		name: "a whole region of two dead at once is held too",
		sc: scenario{servers: []srv{{id: "e1", region: "eu", health: slum.HealthDead}, {id: "e2", region: "eu", health: slum.HealthDead},
			{id: "u1", region: "us"}, {id: "u2", region: "us"}, {id: "u3", region: "us"}}, instances: []ins{{key: "a:prod", server: "e1"}}},
		held: []slum.HoldKind{slum.HoldPartition},
	}, {
		name: "an approved partition hold fails over, once",
		sc: scenario{servers: three("s1", "s2"), instances: []ins{{key: "a:prod", server: "s1"}},
			holds: []slum.Hold{{ID: 4, Kind: slum.HoldPartition, Fingerprint: fingerprint([]string{"s1", "s2"}), State: slum.HoldApproved}}},
		reschedules: []string{"a:prod s1->s3"},
		failingOver: []string{"s1"},
		check: func(t *testing.T, p *Plan) {
			if !slices.Equal(p.Approved, []int64{4}) {
				t.Errorf("approved %v", p.Approved)
			}
		},
	}, {
		name: "the failover rate: one new server a minute; one already failing over continues",
		sc: scenario{servers: []srv{{id: "s1", health: slum.HealthDead}, {id: "s2", health: slum.HealthDead}, {id: "s3", health: slum.HealthDead},
			{id: "s4"}, {id: "s5"}, {id: "s6"}, {id: "s7"}, {id: "s8"}},
			instances: []ins{{key: "a:prod", server: "s1"}, {key: "b:prod", server: "s2"}, {key: "c:prod", server: "s3"}},
			settings:  func(s *slum.Settings) { s.FailoverRate = 2 },
			failovers: []FailoverRecord{{Server: "s1", At: t0.Add(-30 * time.Second)}}},
		reschedules: []string{"a:prod s1->s4", "b:prod s2->s5"},
		failingOver: []string{"s2"},
		phases:      map[string]slum.Phase{"c:prod": slum.PhaseDown},
		check: func(t *testing.T, p *Plan) {
			if r := p.Servers[2]; r.Failover != slum.FailoverHeld || !strings.Contains(r.Reason, "failover_rate 2") {
				t.Errorf("s3 %+v", r)
			}
		},
	}, {
		name: "a server back from the dead: its stale copies are fenced at once",
		sc: scenario{servers: []srv{{id: "s1", runs: []string{a}, lastDead: time.Minute, since: 2 * time.Second}, {id: "s2"}, {id: "s3"}},
			instances: []ins{{key: "a:prod", server: "s2", home: "s1", updated: 30 * time.Second}}, ledger: []string{"s1/" + a}},
		stops: []string{"s1/" + a + " (fence)"},
		check: func(t *testing.T, p *Plan) {
			if p.Stops[0].Guarded || p.Servers[0].Failover != slum.FailoverFencing {
				t.Errorf("fence %+v, s1 %+v", p.Stops[0], p.Servers[0])
			}
		},
	}, {
		name: "the same server, but a move made after it came back waits for the new copy",
		sc: scenario{servers: []srv{{id: "s1", runs: []string{a}, lastDead: time.Minute, since: 20 * time.Second}, {id: "s2"}},
			instances: []ins{{key: "a:prod", server: "s2", updated: time.Second}}, ledger: []string{"s1/" + a}},
		check: func(t *testing.T, p *Plan) {
			if len(p.Waits) != 1 {
				t.Errorf("waits %+v", p.Waits)
			}
		},
	}, {
		name: "warm spare: the serving copy's server dies, the spare serves at once, the lost copy moves",
		sc: scenario{servers: []srv{{id: "s1", health: slum.HealthDead}, {id: "s2", runs: []string{b}}, {id: "s3"}},
			instances: []ins{{key: "a:prod", server: "s1"}, {key: "a:backup", server: "s2", rank: 1}},
			serving:   map[string][]string{"a": {"prod"}}},
		reschedules: []string{"a:prod s1->s3"},
		failingOver: []string{"s1"},
		serving:     map[string]string{"a": "backup@s2|"},
	}, {
		name: "a serving copy keeps serving when the preferred one comes back (no flapping)",
		sc: scenario{servers: []srv{{id: "s1", runs: []string{a}}, {id: "s2", runs: []string{b}}},
			instances: []ins{{key: "a:prod", server: "s1"}, {key: "a:backup", server: "s2", rank: 1}}, ledger: []string{"s1/" + a, "s2/" + b},
			serving: map[string][]string{"a": {"backup"}}},
		serving: map[string]string{"a": "backup@s2|prod@s1"},
	}, {
		name: "fresh: the lowest rank serves, the rest are spares; active-active serves all",
		sc: scenario{servers: []srv{{id: "s1", runs: []string{a, name("x:prod", "")}}, {id: "s2", runs: []string{b, name("x:backup", "")}}},
			tenants:   []tnt{{id: "x", serving: slum.ServingAll}},
			instances: []ins{{key: "a:prod", server: "s1"}, {key: "a:backup", server: "s2", rank: 1}, {key: "x:prod", server: "s1"}, {key: "x:backup", server: "s2", rank: 1}}},
		serving: map[string]string{"a": "prod@s1|backup@s2", "x": "prod@s1,backup@s2|"},
	}, {
		name: "a moved copy keeps serving from its old server until the new one runs",
		sc: scenario{servers: []srv{{id: "s1", runs: []string{a}}, {id: "s2"}},
			instances: []ins{{key: "a:prod", server: "s2", updated: time.Second}}, ledger: []string{"s1/" + a},
			serving: map[string][]string{"a": {"prod"}}},
		serving: map[string]string{"a": "prod@s1|"},
	}, {
		name:    "nothing serves a tenant on a dead server without a spare: the reason says so",
		sc:      scenario{servers: three("s1"), tenants: []tnt{{id: "a", failover: slum.FailoverNone}}, instances: []ins{{key: "a:prod", server: "s1"}}},
		serving: map[string]string{"a": "|"},
		check: func(t *testing.T, p *Plan) {
			if p.Serving.At(0).Reason != "its server s1 is dead" {
				t.Errorf("reason %q", p.Serving.At(0).Reason)
			}
		},
	}, {
		name: "fail-back returns an instance home once home is healthy long enough",
		sc: scenario{servers: []srv{{id: "s1", since: 10 * time.Minute, lastDead: 20 * time.Minute}, {id: "s2", runs: []string{a}}},
			settings:  func(s *slum.Settings) { s.Failback = slum.FailbackReturn },
			instances: []ins{{key: "a:prod", server: "s2", home: "s1"}}, ledger: []string{"s2/" + a}},
		reschedules: []string{"a:prod s2->s1"},
	}, {
		name: "no fail-back before failback_after, nor with failback stay",
		sc: scenario{servers: []srv{{id: "s1", since: time.Minute, lastDead: 20 * time.Minute}, {id: "s2", runs: []string{a}}, {id: "s3", since: time.Hour}},
			settings:  func(s *slum.Settings) { s.Failback = slum.FailbackReturn },
			instances: []ins{{key: "a:prod", server: "s2", home: "s1"}, {key: "b:prod", server: "s2", home: "s3"}}, ledger: []string{"s2/" + a}},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := Planner{}.Plan(c.sc.input())
			same(t, "reschedules", moves(p.Reschedules), c.reschedules)
			var unplaceable []string
			for _, u := range p.Unplaceable {
				unplaceable = append(unplaceable, string(u.Instance))
			}
			same(t, "unplaceable", unplaceable, c.unplaceable)
			if got := heldKinds(p); !slices.Equal(got, c.held) && !(len(got) == 0 && c.held == nil) {
				t.Errorf("held %v, want %v", got, c.held)
			}
			same(t, "failing over", p.FailingOver, c.failingOver)
			same(t, "stops", keys(p.Stops), c.stops)
			got := phases(p)
			for k, want := range c.phases {
				if got[k] != want {
					t.Errorf("phase of %s: %s, want %s", k, got[k], want)
				}
			}
			for tenant, want := range c.serving {
				if got := servingOf(p, tenant); got != want {
					t.Errorf("serving of %s: %s, want %s", tenant, got, want)
				}
			}
			if c.check != nil {
				c.check(t, p)
			}
		})
	}
}

func TestPlannerMassStopGuard(t *testing.T) {
	var runs, ledger []string
	for i := 0; i < 20; i++ {
		n := name(fmt.Sprintf("t%d:prod", i), "")
		runs = append(runs, n)
		ledger = append(ledger, "s1/"+n)
	}
	sc := scenario{servers: []srv{{id: "s1", runs: runs}}, ledger: ledger}
	p := Planner{}.Plan(sc.input())
	if len(p.Stops) != 0 || len(p.Held) != 1 || p.Held[0].Kind != slum.HoldMassStop || len(p.Held[0].Stops) != 20 {
		t.Fatalf("an emptied database: stops %d, held %+v", len(p.Stops), p.Held)
	}
	if !strings.Contains(p.Held[0].Summary, "refused to stop 20 of the 20 instances") {
		t.Errorf("summary %q", p.Held[0].Summary)
	}
	// Approving that exact plan lets it through once.
	sc.holds = []slum.Hold{{ID: 9, Kind: slum.HoldMassStop, Fingerprint: p.Held[0].Fingerprint, State: slum.HoldApproved}}
	p = Planner{}.Plan(sc.input())
	if len(p.Stops) != 20 || len(p.Held) != 0 || !slices.Equal(p.Approved, []int64{9}) {
		t.Fatalf("approved: stops %d, held %d, approved %v", len(p.Stops), len(p.Held), p.Approved)
	}
	// An approval of another plan does not: one more stop is a new plan.
	sc.ledger = append(sc.ledger, "s1/"+name("extra:prod", ""))
	sc.servers[0].runs = append(sc.servers[0].runs, name("extra:prod", ""))
	p = Planner{}.Plan(sc.input())
	if len(p.Stops) != 0 || len(p.Held) != 1 {
		t.Fatalf("a different plan went through on an old approval: stops %d", len(p.Stops))
	}
	// Removals the operator made are expected, however many: removing
	// 20 tenants at once stops their 20 copies.
	var removed []string
	for i := 0; i < 20; i++ {
		removed = append(removed, fmt.Sprintf("t%d:prod", i))
	}
	p = Planner{}.Plan(scenario{servers: []srv{{id: "s1", runs: runs}}, ledger: ledger, removed: removed}.input())
	if len(p.Stops) != 20 || len(p.Held) != 0 || p.Stops[0].Reason != "removed" {
		t.Fatalf("20 removals: stops %d, held %+v", len(p.Stops), p.Held)
	}
	// Fences and moves never count: the desired state says where the
	// instances run instead.
	var insts []ins
	for i := 0; i < 20; i++ {
		insts = append(insts, ins{key: fmt.Sprintf("t%d:prod", i), server: "s2", home: "s1", updated: 30 * time.Second})
	}
	sc = scenario{servers: []srv{{id: "s1", runs: runs, lastDead: time.Minute, since: time.Second}, {id: "s2"}}, ledger: ledger, instances: insts}
	p = Planner{}.Plan(sc.input())
	if len(p.Stops) != 20 || len(p.Held) != 0 {
		t.Fatalf("fencing 20 copies: stops %d, held %+v", len(p.Stops), p.Held)
	}
}

// show prints a plan, without the shares kept for the next plan.
func show(p *Plan) string {
	c := *p
	c.parts = nil
	return fmt.Sprintf("%+v", c)
}

func TestPlannerIsPure(t *testing.T) {
	sc := scenario{servers: []srv{{id: "s1", health: slum.HealthDead}, {id: "s2"}, {id: "s3"}},
		instances: []ins{{key: "a:prod", server: "s1"}, {key: "b:prod", server: "s2"}}, ledger: []string{"s2/" + name("c:prod", "")}}
	in := sc.input()
	first := show(Planner{}.Plan(in))
	for i := 0; i < 5; i++ {
		if again := show(Planner{}.Plan(in)); again != first {
			t.Fatalf("the same input planned differently:\n%s\n%s", first, again)
		}
	}
	if desiredIn(t, in.Fleet, "a:prod").ServerID != "s1" || len(in.Ledger.Owned("s2")) != 1 {
		t.Fatal("Plan changed its input")
	}
}

// desiredIn returns the fleet's instance with key k.
func desiredIn(t *testing.T, f *Fleet, k slum.InstanceKey) *Desired {
	t.Helper()
	d, ok := f.Instance(k)
	if !ok {
		t.Fatalf("the fleet has no instance %s", k)
	}
	return d
}

// planReused plans in with prev as the previous plan, fails unless the
// plan is the one made without it, and returns it.
func planReused(t *testing.T, in Input, prev *Plan) *Plan {
	t.Helper()
	in.Prev = prev
	reused := Planner{}.Plan(in)
	in.Prev = nil
	if fresh := (Planner{}).Plan(in); show(reused) != show(fresh) {
		t.Fatalf("with the previous plan:\n%s\nwithout:\n%s", show(reused), show(fresh))
	}
	return reused
}

// Reusing the previous plan's shares changes nothing in the result.
func TestPlannerReuseIsInvisible(t *testing.T) {
	var runs []string
	var ledger []string
	var insts []ins
	for i := 0; i < 6; i++ {
		n := name(fmt.Sprintf("t%d:prod", i), "")
		runs = append(runs, n)
		ledger = append(ledger, "s1/"+n)
		insts = append(insts, ins{key: fmt.Sprintf("t%d:prod", i), server: "s1"})
	}
	for _, sc := range []scenario{
		{servers: []srv{{id: "s1", runs: runs}, {id: "s2"}}, instances: insts, ledger: ledger},
		{servers: []srv{{id: "s1", runs: runs}, {id: "s2", health: slum.HealthSuspect, unlisted: true}}, instances: insts, ledger: ledger},
		{servers: []srv{{id: "s1", runs: runs}, {id: "s2", health: slum.HealthDead}}, instances: append(insts, ins{key: "x:prod", server: "s2"}), ledger: ledger},
	} {
		in := sc.input()
		planReused(t, in, Planner{}.Plan(in))
	}
	// A quiet server whose instances all read differently, with the fleet
	// indexed anew at the same revision (the previous plan's observations
	// point into the old index): a part taken from the previous plan has
	// each instance's own observation, on the new index.
	deg, failed, moved, onDemand := name("d:prod", ""), name("f:prod", ""), name("m:prod", ""), name("o:prod", "")
	in := scenario{servers: []srv{{id: "s1", runs: []string{runs[0], deg + "=degraded", failed + "=failed", moved}}, {id: "s2"}},
		instances: []ins{insts[0], {key: "d:prod", server: "s1"}, {key: "f:prod", server: "s1"}, {key: "m:prod", server: "s1", home: "s2"},
			{key: "o:prod", server: "s1", onDemand: true}, {key: "s:prod", server: "s1", stopped: true}},
		ledger: []string{ledger[0], "s1/" + deg, "s1/" + failed, "s1/" + moved, "s1/" + onDemand}}.input()
	first := Planner{}.Plan(in)
	in.Fleet = NewFleet(in.Fleet.Snapshot)
	again := planReused(t, in, first)
	if again.Serving.At(0) != first.Serving.At(0) {
		t.Fatal("the plan took none of the previous plan's shares") // it takes every server's, so its decisions too
	}
	seen := map[string]bool{}
	for i, o := range again.Observations.All() {
		if o.Instance != &in.Fleet.Desired[i] {
			t.Fatalf("observation %d is of %v, not of the new index's %s", i, o.Instance, in.Fleet.Desired[i].Key)
		}
		seen[fmt.Sprintf("%s %s %q", o.Phase(), o.Health, o.Message)] = true
	}
	if len(seen) != 6 {
		t.Fatalf("%d kinds of observation, want 6: %v", len(seen), seen)
	}
}

// A plan where nothing changed shares the previous plan's observations
// (no array per plan of a quiet fleet); one where something did has its
// own, and the previous plan's are left as they were.
func TestPlannerSharesObservationsWhileNothingChanges(t *testing.T) {
	a, b := name("a:prod", ""), name("b:prod", "")
	in := scenario{servers: []srv{{id: "s1", runs: []string{a}}, {id: "s2", runs: []string{b}}},
		instances: []ins{{key: "a:prod", server: "s1"}, {key: "b:prod", server: "s2", home: "s1"}},
		ledger:    []string{"s1/" + a, "s2/" + b}}.input()
	first := Planner{}.Plan(in)
	in.Prev = first
	again := Planner{}.Plan(in)
	if again.Observations.At(0) != first.Observations.At(0) {
		t.Fatal("a plan where nothing changed made observations of its own")
	}
	if got := again.Observations.At(desiredIn(t, in.Fleet, "b:prod").Index).Message; got != "failed over from s1" {
		t.Fatalf("b's message %q", got)
	}
	before := first.Observations.Slice()
	in.Observed["s1"] = &observed.Snapshot{Server: "s1", Health: in.Observed["s1"].Health, Listed: true, ListedAt: t0, Content: in.Observed["s1"].Content + 1,
		Instances: map[string]slum.InstanceHealth{a: slum.InstanceDegraded}}
	changed := planReused(t, in, first)
	if changed.Observations.At(0) == first.Observations.At(0) {
		t.Fatal("a plan that observed a change shares the previous plan's observations")
	}
	if got := changed.Observations.At(desiredIn(t, in.Fleet, "a:prod").Index).Health; got != slum.InstanceDegraded {
		t.Fatalf("a's health %q, want degraded", got)
	}
	if !slices.Equal(first.Observations.Slice(), before) {
		t.Fatal("the next plan changed the previous plan's observations")
	}
}

// Every change of the ledger between two plans is seen by the second,
// reuse or not: the ledger counts its own changes.
func TestPlannerReuseFollowsTheLedger(t *testing.T) {
	a, b := name("a:prod", ""), name("b:prod", "")
	pl := func(server, n string) slum.Placement {
		_, tenant, inst, _ := names.ParseTenementName(n)
		return slum.Placement{ServerID: server, Name: n, TenantID: tenant, InstanceID: inst}
	}
	for _, c := range []struct {
		name   string
		change func(l *Ledger)
	}{
		{"a placement forgotten", func(l *Ledger) { l.Forget("s1", a) }},
		{"a placement of a copy no longer desired", func(l *Ledger) { l.Add(pl("s1", b), t0.Add(-time.Hour)) }},
		{"a placement touched after the list", func(l *Ledger) { l.Add(pl("s1", b), t0); l.Touch("s1", b, t0) }},
		{"an action in flight", func(l *Ledger) { l.Add(pl("s1", b), t0.Add(-time.Hour)); l.SetBusy("s1", b, true) }},
		{"an action done", func(l *Ledger) { l.SetBusy("s1", a, true); l.SetBusy("s1", a, false) }},
		{"a server dropped", func(l *Ledger) { l.DropServer("s1") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := scenario{servers: []srv{{id: "s1", runs: []string{a}}, {id: "s2"}},
				instances: []ins{{key: "a:prod", server: "s1"}}, ledger: []string{"s1/" + a}}.input()
			first := Planner{}.Plan(in)
			c.change(in.Ledger)
			planReused(t, in, first)
		})
	}
}

// With one serving copy, the copy that serves is stable from the start:
// a new tenant waits (briefly) for its preferred copy rather than have
// its backup serve and give way a moment later; once a copy serves, it
// serves while it is up.
func TestPlannerServingIsStableFromTheStart(t *testing.T) {
	a, b := name("a:prod", ""), name("a:backup", "")
	onlyBackup := scenario{servers: []srv{{id: "s1"}, {id: "s2", runs: []string{b}}},
		instances: []ins{{key: "a:prod", server: "s1"}, {key: "a:backup", server: "s2", rank: 1}}}
	both := onlyBackup
	both.servers = []srv{{id: "s1", runs: []string{a}}, {id: "s2", runs: []string{b}}}
	prodDead := onlyBackup
	prodDead.servers = []srv{{id: "s1", health: slum.HealthDead}, {id: "s2", runs: []string{b}}, {id: "s3"}}
	at := func(sc scenario, after time.Duration, prev *Plan) *Plan {
		in := sc.input()
		in.Now = t0.Add(after)
		if prev != nil {
			in.Serving = map[string]Serving{"a": *prev.Serving.At(0)}
		}
		return Planner{}.Plan(in)
	}
	first := at(onlyBackup, 0, nil)
	if got := servingOf(first, "a"); got != "|" || !first.Serving.At(0).Settling || !strings.Contains(first.Serving.At(0).Reason, "preferred copy prod") {
		t.Fatalf("only the backup runs, prod on its way: %s %+v", got, first.Serving.At(0))
	}
	for _, c := range []struct {
		name string
		plan *Plan
		want string
	}{
		{"prod up 3s later serves from the start", at(both, 3*time.Second, first), "prod@s1|backup@s2"},
		{"still waiting 5s later", at(onlyBackup, 5*time.Second, first), "|"},
		{"prod not up after servingSettle: the backup serves", at(onlyBackup, servingSettle, first), "backup@s2|"},
		{"and keeps serving when prod comes up", at(both, servingSettle+time.Second, at(onlyBackup, servingSettle, first)), "backup@s2|prod@s1"},
		{"the clock stepped back a minute: the wait ends, the backup serves", at(onlyBackup, -time.Minute, first), "backup@s2|"},
		{"prod's server dead: the backup serves at once", at(prodDead, 0, nil), "backup@s2|"},
		{"prod up first: it serves at once", at(both, 0, nil), "prod@s1|backup@s2"},
	} {
		if got := servingOf(c.plan, "a"); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
		if c.want != "|" && c.plan.Serving.At(0).Settling {
			t.Errorf("%s: still settling", c.name)
		}
	}
}

// TestPlannerReplicatedServesOnlyHealthyCopies: a replicated tenant's copy
// takes traffic only once tenement calls it healthy (its guard holds the
// lease and restored); until then nothing serves it and the reason says it
// waits for its writer. A stateless tenant's copy serves in any health but
// restarting or failed, as before.
func TestPlannerReplicatedServesOnlyHealthyCopies(t *testing.T) {
	for _, tc := range []struct {
		data            slum.DataPolicy
		prod, backup    slum.InstanceHealth // "": not listed
		serving, reason string
		relist          string // the servers listed again soon
	}{
		{slum.DataReplicated, slum.InstanceHealthy, "", "prod@s1|", "", ""},
		{slum.DataReplicated, slum.InstanceHealthUnknown, "", "|", ReasonWaitingForWriter, "s1"},
		{slum.DataReplicated, slum.InstanceDegraded, "", "|", ReasonWaitingForWriter, "s1"},
		{slum.DataReplicated, slum.InstanceUnhealthy, "", "|", ReasonWaitingForWriter, "s1"},
		{slum.DataReplicated, "", "", "|", reasonNoCopyYet, ""},
		// The writer serves; a copy whose guard waits for the lease is no spare.
		{slum.DataReplicated, slum.InstanceHealthy, slum.InstanceHealthUnknown, "prod@s1|", "", "s2"},
		{slum.DataReplicated, slum.InstanceHealthUnknown, slum.InstanceHealthy, "backup@s2|", "", "s1"},
		{slum.DataLocal, slum.InstanceHealthUnknown, "", "prod@s1|", "", ""},
		{slum.DataLocal, slum.InstanceDegraded, slum.InstanceHealthUnknown, "prod@s1|backup@s2", "", ""},
		{slum.DataLocal, slum.InstanceUnhealthy, "", "|", reasonNoCopyYet, ""},
	} {
		name := fmt.Sprintf("%s/prod=%s/backup=%s", tc.data, tc.prod, tc.backup)
		t.Run(name, func(t *testing.T) {
			runs := func(n string, h slum.InstanceHealth) []string {
				if h == "" {
					return nil
				}
				return []string{n + "=" + string(h)}
			}
			sc := scenario{
				servers:   []srv{{id: "s1", runs: runs("api:r--prod", tc.prod)}, {id: "s2", runs: runs("api:r--backup", tc.backup)}},
				tenants:   []tnt{{id: "r", data: tc.data}},
				instances: []ins{{key: "r:prod", server: "s1", rank: 0}, {key: "r:backup", server: "s2", rank: 1}},
				ledger:    []string{"s1/api:r--prod", "s2/api:r--backup"},
			}
			if tc.backup == "" {
				sc.instances = sc.instances[:1]
				sc.ledger = sc.ledger[:1]
			}
			p := Planner{}.Plan(sc.input())
			if got := servingOf(p, "r"); got != tc.serving {
				t.Errorf("serving|spares %q, want %q", got, tc.serving)
			}
			if p.Serving.At(0).Reason != tc.reason {
				t.Errorf("reason %q, want %q", p.Serving.At(0).Reason, tc.reason)
			}
			if got := strings.Join(p.Relist, ","); got != tc.relist {
				t.Errorf("relist %q, want %q", got, tc.relist)
			}
		})
	}
}
