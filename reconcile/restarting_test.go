package reconcile

import (
	"testing"

	"github.com/slum-fleet/slum"
)

// A copy a rolling restart restarts now is not picked to serve while
// another copy of its tenant is up: with a warm spare, the spare serves
// before the restart, and keeps serving after it (the serving copy
// changes back only if it should). A last copy serves while it restarts.
func TestPlannerServesNotFromACopyBeingRestarted(t *testing.T) {
	a, b := name("a:prod", ""), name("a:backup", "")
	both := []srv{{id: "s1", runs: []string{a}}, {id: "s2", runs: []string{b}}}
	pair := []ins{{key: "a:prod", server: "s1"}, {key: "a:backup", server: "s2", rank: 1}}
	for _, tc := range []struct {
		name       string
		servers    []srv
		serving    slum.ServingPolicy
		served     []string
		restarting []slum.InstanceKey
		want       string // serving|spares
	}{
		{"the serving copy restarts: its spare serves", both, "", []string{"prod"}, []slum.InstanceKey{"a:prod"}, "backup@s2|"},
		{"the spare restarts: the serving copy stays", both, "", []string{"prod"}, []slum.InstanceKey{"a:backup"}, "prod@s1|"},
		{"after the restart the spare keeps serving", both, "", []string{"backup"}, nil, "backup@s2|prod@s1"},
		{"nothing restarts: unchanged", both, "", []string{"prod"}, nil, "prod@s1|backup@s2"},
		{"the last copy up serves while it restarts", []srv{{id: "s1", runs: []string{a}}, {id: "s2"}}, "", []string{"prod"},
			[]slum.InstanceKey{"a:prod"}, "prod@s1|"},
		{"another tenant's restart changes nothing", both, "", []string{"prod"}, []slum.InstanceKey{"b:prod"}, "prod@s1|backup@s2"},
		{"serving all: the copy restarting leaves the set", both, slum.ServingAll, []string{"prod", "backup"}, []slum.InstanceKey{"a:backup"}, "prod@s1|"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := scenario{servers: tc.servers, tenants: []tnt{{id: "a", serving: tc.serving}}, instances: pair,
				serving: map[string][]string{"a": tc.served}}
			in := sc.input()
			in.Fleet.Snapshot.Restarting = tc.restarting
			if got := servingOf(Planner{}.Plan(in), "a"); got != tc.want {
				t.Fatalf("serving %s, want %s", got, tc.want)
			}
		})
	}
}
