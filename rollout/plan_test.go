package rollout

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
)

func inst(key, server, process string, stopped bool) slum.Instance {
	k := slum.InstanceKey(key)
	t, id := k.Split()
	st := slum.StateRunning
	if stopped {
		st = slum.StateStopped
	}
	return slum.Instance{TenantID: t, ID: id, Process: process, ServerID: server, DesiredState: st}
}

func TestPlan(t *testing.T) {
	f := Fleet{
		Instances: []slum.Instance{
			inst("alice:backup", "s2", "api", false), inst("alice:prod", "s1", "api", false),
			inst("alice:worker", "s3", "jobs", false),
			inst("bob:prod", "s1", "api", false), inst("bob:spare", "s2", "api", false),
			inst("carol:prod", "s2", "api", true),
		},
		Tenants: []slum.TenantStatus{
			{TenantID: "alice", Serving: []slum.CopyRef{{Instance: "prod", Server: "s1"}}},
			{TenantID: "bob", Serving: []slum.CopyRef{{Instance: "spare", Server: "s2"}}},
		},
	}
	for _, tc := range []struct {
		name string
		spec slum.RestartSpec
		want string // instance@server order; * marks a serving copy
		err  error
	}{
		{"a tenant: spares first, the serving copy last", slum.RestartSpec{Tenant: "alice"}, "alice:backup@s2 alice:worker@s3 alice:prod@s1*", nil},
		{"a process only", slum.RestartSpec{Tenant: "alice", Process: "api"}, "alice:backup@s2 alice:prod@s1*", nil},
		{"a server", slum.RestartSpec{Server: "s1"}, "alice:prod@s1* bob:prod@s1", nil},
		{"all, tenant by tenant; stopped copies are left alone", slum.RestartSpec{All: true},
			"alice:backup@s2 alice:worker@s3 alice:prod@s1* bob:prod@s1 bob:spare@s2*", nil},
		{"all of a process", slum.RestartSpec{All: true, Process: "jobs"}, "alice:worker@s3", nil},
		{"a tenant with nothing running", slum.RestartSpec{Tenant: "carol"}, "", slum.ErrNotFound},
		{"an unknown server", slum.RestartSpec{Server: "s9"}, "", slum.ErrNotFound},
		{"nothing named", slum.RestartSpec{}, "", slum.ErrInvalid},
		{"two things named", slum.RestartSpec{Tenant: "alice", All: true}, "", slum.ErrInvalid},
		{"a bad parallel", slum.RestartSpec{All: true, Parallel: -1}, "", slum.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps, err := Plan(f, tc.spec)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			var got []string
			for _, s := range steps {
				if s.State != slum.StepPending {
					t.Fatalf("step %+v is not pending", s)
				}
				w := string(s.Instance) + "@" + s.Server
				if s.Serving {
					w += "*"
				}
				got = append(got, w)
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Fatalf("order %q, want %q", g, tc.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	step := func(key string, st slum.StepState) slum.RolloutStep {
		return slum.RolloutStep{Instance: slum.InstanceKey(key), State: st}
	}
	P, R, D := slum.StepPending, slum.StepRestarting, slum.StepDone
	for _, tc := range []struct {
		name     string
		steps    []slum.RolloutStep
		parallel int
		want     []int
	}{
		{"one at a time", []slum.RolloutStep{step("a:1", P), step("b:1", P)}, 1, []int{0}},
		{"one busy: none more", []slum.RolloutStep{step("a:1", R), step("b:1", P)}, 1, nil},
		{"never two of a tenant", []slum.RolloutStep{step("a:1", P), step("a:2", P), step("b:1", P)}, 3, []int{0, 2}},
		{"a tenant busy waits", []slum.RolloutStep{step("a:1", R), step("a:2", P), step("b:1", P)}, 3, []int{2}},
		{"in order after done", []slum.RolloutStep{step("a:1", D), step("a:2", P), step("b:1", P)}, 1, []int{1}},
		{"all done", []slum.RolloutStep{step("a:1", D)}, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := next(tc.steps, tc.parallel); !slices.Equal(got, tc.want) {
				t.Fatalf("next = %v, want %v", got, tc.want)
			}
		})
	}
}
