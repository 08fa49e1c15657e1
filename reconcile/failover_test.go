package reconcile

import (
	"slices"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

// One FailoverStarted per failover, counting what it did right after
// moving; none for a death that moves nothing.
func TestFailoversAnnounceWhatTheyDid(t *testing.T) {
	died := t0.Add(-time.Second)
	plan := func(unplaceable ...string) *Plan {
		p := &Plan{Servers: []ServerReport{{ServerID: "s1", Failover: slum.FailoverDone}, {ServerID: "s2"}}}
		for _, from := range unplaceable {
			p.Unplaceable = append(p.Unplaceable, Unplaceable{Instance: "x:prod", From: from})
		}
		return p
	}
	dead := func(string) time.Time { return died }
	type step struct {
		plan  *Plan
		moved map[string]int
		dead  func(string) time.Time
		want  []string
	}
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"moved and unplaceable, told once", []step{
			{plan("s1", "s1"), map[string]int{"s1": 1}, dead, []string{"server/s1: server is dead: 1 of its instances placed elsewhere, 2 cannot be placed"}},
			{plan("s1", "s1"), nil, dead, nil},
			{plan("s1"), map[string]int{"s1": 1}, dead, nil},
		}},
		{"nothing to move: no failover told", []step{
			{plan(), nil, dead, nil},
		}},
		{"nothing placeable: told with its count", []step{
			{plan("s1"), nil, dead, []string{"server/s1: server is dead: 0 of its instances placed elsewhere, 1 cannot be placed"}},
		}},
		{"a second death is a second failover", []step{
			{plan(), map[string]int{"s1": 2}, dead, []string{"server/s1: server is dead: 2 of its instances placed elsewhere"}},
			{plan(), map[string]int{"s1": 1}, func(string) time.Time { return died.Add(time.Minute) }, []string{"server/s1: server is dead: 1 of its instances placed elsewhere"}},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var f failovers
			for i, s := range c.steps {
				var got []string
				for _, e := range f.announce(s.plan, s.moved, s.dead, t0) {
					if e.Reason != slum.ReasonFailoverStarted {
						t.Fatalf("event %+v", e)
					}
					got = append(got, string(e.Object)+": "+e.Message)
				}
				if !slices.Equal(got, s.want) {
					t.Errorf("step %d: %q, want %q", i, got, s.want)
				}
			}
		})
	}
}
