package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/observed"
)

func TestPhaseCodeKeepsEveryPhase(t *testing.T) {
	for _, ph := range append([]slum.Phase{""}, slum.Phases...) {
		if got := phaseCodeOf(ph).Phase(); got != ph {
			t.Errorf("phase %q comes back as %q", ph, got)
		}
		if got := observation(nil, ph, "", "", false).Phase(); got != ph {
			t.Errorf("observation of phase %q reads %q", ph, got)
		}
	}
}

func TestServingSplitsItsCopies(t *testing.T) {
	a, b, c := slum.CopyRef{Instance: "a", Server: "s1"}, slum.CopyRef{Instance: "b", Server: "s2"}, slum.CopyRef{Instance: "c", Server: "s3"}
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name            string
		serving, spares []slum.CopyRef
		since           time.Time
	}{
		{"nothing", nil, nil, time.Time{}},
		{"one serves", []slum.CopyRef{a}, nil, at},
		{"one serves, two spares", []slum.CopyRef{a}, []slum.CopyRef{b, c}, at},
		{"all serve", []slum.CopyRef{a, b, c}, nil, at},
		{"spares only", nil, []slum.CopyRef{b}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServing("t", tt.serving, tt.spares, tt.since)
			if !slices.Equal(s.Serving(), tt.serving) || !slices.Equal(s.Spares(), tt.spares) || !s.Since().Equal(tt.since) {
				t.Fatalf("serving %v spares %v since %v, want %v %v %v", s.Serving(), s.Spares(), s.Since(), tt.serving, tt.spares, tt.since)
			}
			// Appending to the serving copies must not overwrite a spare.
			_ = append(s.Serving(), slum.CopyRef{Instance: "x"})
			if !slices.Equal(s.Spares(), tt.spares) {
				t.Fatalf("an append to Serving() changed the spares to %v", s.Spares())
			}
		})
	}
}

// A plan holds one Observation per instance and one Serving per tenant,
// several plans at once at the end of a converge: their size is the
// controller's memory at 100,000 instances.
func TestPlanRecordsStaySmall(t *testing.T) {
	if n := unsafe.Sizeof(Observation{}); n > 48 {
		t.Errorf("an Observation is %d bytes, more than 48", n)
	}
	if n := unsafe.Sizeof(Serving{}); n > 72 {
		t.Errorf("a Serving is %d bytes, more than 72", n)
	}
}

// A plan that changes one instance's observation and one tenant's
// serving shares every other array of records with the plan before it,
// which stays as it was.
func TestPlanSharesWhatDidNotChange(t *testing.T) {
	const n = 2*chunkLen + 100
	var sc scenario
	var runs []string
	for i := range n {
		key := fmt.Sprintf("t%05d:prod", i)
		sc.instances = append(sc.instances, ins{key: key, server: "s1"})
		runs = append(runs, name(key, ""))
		sc.ledger = append(sc.ledger, "s1/"+name(key, ""))
	}
	sc.servers = []srv{{id: "s1", runs: runs}}
	in := sc.input()
	first := Planner{}.Plan(in)
	gone := chunkLen + 5 // its copy is no longer listed
	s1 := in.Observed["s1"]
	listed := maps.Clone(s1.Instances)
	delete(listed, name(sc.instances[gone].key, ""))
	in.Observed["s1"] = &observed.Snapshot{Server: "s1", Health: s1.Health, Listed: true, ListedAt: t0, Content: s1.Content + 1, Instances: listed}
	before := first.Observations.Slice()
	in.Prev = first
	next := Planner{}.Plan(in)
	if got := next.Observations.At(gone).Phase(); got != slum.PhasePending {
		t.Fatalf("the unlisted copy is %s, want pending", got)
	}
	if got := servingOf(next, fmt.Sprintf("t%05d", gone)); got != "|" {
		t.Fatalf("its tenant is served by %q, want nothing", got)
	}
	for k := range first.Observations.arrays {
		if same := &next.Observations.arrays[k][0] == &first.Observations.arrays[k][0]; same != (k != 1) {
			t.Errorf("observations array %d shared: %v, want only array 1 of its own", k, same)
		}
		if same := &next.Serving.arrays[k][0] == &first.Serving.arrays[k][0]; same != (k != 1) {
			t.Errorf("serving array %d shared: %v, want only array 1 of its own", k, same)
		}
	}
	if !slices.Equal(first.Observations.Slice(), before) {
		t.Fatal("the next plan changed the one before")
	}
}
