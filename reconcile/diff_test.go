package reconcile

import (
	"slices"
	"testing"

	"github.com/slum-fleet/slum/desired"
)

func inst(tenant, id string, mutate ...func(*desired.Instance)) desired.Instance {
	in := desired.Instance{TenantID: tenant, ID: id, Process: "api", ServerID: "s1", MemoryMB: 64,
		DesiredState: desired.StateRunning, Mode: desired.ModeAlways, Generation: 1}
	for _, m := range mutate {
		m(&in)
	}
	return in
}

func stopped(in *desired.Instance)  { in.DesiredState = desired.StateStopped }
func onDemand(in *desired.Instance) { in.Mode = desired.ModeOnDemand }

func running(names ...string) map[string]string {
	out := map[string]string{}
	for _, n := range names {
		out[n] = "healthy"
	}
	return out
}

func owned(names ...string) map[string]struct{} {
	m := map[string]struct{}{}
	for _, n := range names {
		m[n] = struct{}{}
	}
	return m
}

func want(ins ...desired.Instance) []Desired {
	out := make([]Desired, len(ins))
	for i, in := range ins {
		out[i] = NewDesired(in)
	}
	return out
}

func names(as []Action) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Name)
	}
	slices.Sort(out)
	return out
}

func TestDiffServer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        ServerInput
		spawns    []string
		stops     []string
		holds     []string
		record    []string
		forget    []string
		unmanaged []string
		phases    map[string]string
	}{
		{
			name:   "empty server: spawn what should run, record it first",
			in:     ServerInput{Desired: want(inst("alice", "prod"), inst("bob", "prod"))},
			spawns: []string{"api:alice--prod", "api:bob--prod"},
			record: []string{"api:alice--prod", "api:bob--prod"},
			phases: map[string]string{"alice:prod": PhasePending, "bob:prod": PhasePending},
		},
		{
			name:   "converged: nothing to do",
			in:     ServerInput{Desired: want(inst("alice", "prod")), Observed: running("api:alice--prod"), Owned: owned("api:alice--prod")},
			phases: map[string]string{"alice:prod": PhaseRunning},
		},
		{
			name:      "unmanaged instances are never stopped",
			in:        ServerInput{Observed: running("api:alice--prod", "web:mystery", "api:carol--prod")},
			unmanaged: []string{"api:alice--prod", "api:carol--prod", "web:mystery"},
		},
		{
			name:  "a copy slum placed and nobody wants is stopped",
			in:    ServerInput{Observed: running("api:alice--prod"), Owned: owned("api:alice--prod")},
			stops: []string{"api:alice--prod"},
		},
		{
			name:   "desired stopped and running: stop",
			in:     ServerInput{Desired: want(inst("alice", "prod", stopped)), Observed: running("api:alice--prod"), Owned: owned("api:alice--prod")},
			stops:  []string{"api:alice--prod"},
			phases: map[string]string{"alice:prod": PhasePending},
		},
		{
			name:      "desired stopped but never placed by slum: left alone",
			in:        ServerInput{Desired: want(inst("alice", "prod", stopped)), Observed: running("api:alice--prod")},
			unmanaged: []string{"api:alice--prod"},
			phases:    map[string]string{"alice:prod": PhaseRunning},
		},
		{
			name:   "desired stopped and absent: converged",
			in:     ServerInput{Desired: want(inst("alice", "prod", stopped)), Owned: owned("api:alice--prod")},
			phases: map[string]string{"alice:prod": PhaseStopped},
		},
		{
			name:   "on-demand and absent: left to wake on request",
			in:     ServerInput{Desired: want(inst("carol", "prod", onDemand))},
			record: []string{"api:carol--prod"},
			phases: map[string]string{"carol:prod": PhaseIdle},
		},
		{
			name:   "running but failed in tenement",
			in:     ServerInput{Desired: want(inst("alice", "prod")), Observed: map[string]string{"api:alice--prod": "failed"}, Owned: owned("api:alice--prod")},
			phases: map[string]string{"alice:prod": PhaseFailed},
		},
		{
			name:   "gone from the server and not wanted: forget the ledger entry",
			in:     ServerInput{Owned: owned("api:old--prod")},
			forget: []string{"api:old--prod"},
		},
		{
			name: "moved away, new copy not running yet: hold the stop",
			in: ServerInput{Observed: running("api:alice--prod"), Owned: owned("api:alice--prod"),
				Elsewhere: func(tenant, instance string) (string, bool, bool) { return "s2", false, true }},
			holds: []string{"api:alice--prod"},
		},
		{
			name: "moved away, new copy runs: stop (fence) the old one",
			in: ServerInput{Observed: running("api:alice--prod"), Owned: owned("api:alice--prod"),
				Elsewhere: func(tenant, instance string) (string, bool, bool) { return "s2", true, true }},
			stops: []string{"api:alice--prod"},
		},
		{
			name: "process changed: new name spawned, old one held until it runs",
			in: ServerInput{Desired: want(inst("alice", "prod", func(i *desired.Instance) { i.Process = "web" })),
				Observed: running("api:alice--prod"), Owned: owned("api:alice--prod"),
				Elsewhere: func(tenant, instance string) (string, bool, bool) { return "s1", false, true }},
			spawns: []string{"web:alice--prod"},
			record: []string{"web:alice--prod"},
			holds:  []string{"api:alice--prod"},
			phases: map[string]string{"alice:prod": PhasePending},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.ServerID = "s1"
			p := DiffServer(tc.in)
			var holds, record, forget []string
			for _, h := range p.Holds {
				holds = append(holds, h.Name)
			}
			for _, r := range p.Record {
				record = append(record, r.Name)
			}
			for _, f := range p.Forget {
				forget = append(forget, f.Name)
			}
			slices.Sort(record)
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"spawns", names(p.Spawns), tc.spawns}, {"stops", names(p.Stops), tc.stops}, {"holds", holds, tc.holds},
				{"record", record, tc.record}, {"forget", forget, tc.forget}, {"unmanaged", p.Unmanaged, tc.unmanaged}} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
			got := map[string]string{}
			for _, o := range p.Observations {
				got[o.Instance.Key] = o.Phase
			}
			if len(got) != len(tc.phases) {
				t.Errorf("phases %v, want %v", got, tc.phases)
			}
			for k, v := range tc.phases {
				if got[k] != v {
					t.Errorf("phase of %s = %q, want %q", k, got[k], v)
				}
			}
			for _, a := range append(p.Spawns, p.Stops...) {
				if a.ServerID != "s1" || a.Name != a.Process+":"+a.ID {
					t.Errorf("malformed action %+v", a)
				}
			}
		})
	}
}
