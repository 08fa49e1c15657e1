package slum

import (
	"strings"
	"testing"
	"time"
)

func TestSettingsWarnings(t *testing.T) {
	tests := []struct {
		name            string
		interval, probe time.Duration
		deadAfter       int
		want            string // "" for none
	}{
		{"defaults", time.Second, 800 * time.Millisecond, 3, ""},
		{"timeout equal to the interval", time.Second, time.Second, 3, ""},
		{"timeout longer than the interval", time.Second, 5 * time.Second, 3, "found dead only after dead_after × probe_timeout (15s), not 3s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DefaultSettings()
			s.ProbeInterval, s.ProbeTimeout, s.DeadAfter = tt.interval, tt.probe, tt.deadAfter
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			ws := s.Warnings()
			switch {
			case tt.want == "" && len(ws) != 0:
				t.Fatalf("warnings %q, want none", ws)
			case tt.want != "" && (len(ws) != 1 || !strings.Contains(ws[0], tt.want)):
				t.Fatalf("warnings %q, want one saying %q", ws, tt.want)
			}
		})
	}
}
