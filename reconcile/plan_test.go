package reconcile

import (
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/slum-fleet/slum"
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
