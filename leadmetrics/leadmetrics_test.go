package leadmetrics

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

type fixed struct {
	l   slum.Leadership
	err error
}

func (f fixed) Leadership(context.Context, string) (slum.Leadership, error) { return f.l, f.err }

func TestMetricsSayWhoLeads(t *testing.T) {
	lead := slum.Leadership{At: time.Unix(5, 0), Leader: "a", Epoch: 3, ExpiresAt: time.Unix(10, 0), Live: true, RenewedAt: time.Unix(3, 500e6),
		Standbys: []slum.Controller{{Holder: "b"}, {Holder: "c"}}}
	lapsed := lead
	lapsed.Live = false
	for _, tc := range []struct {
		name string
		src  fixed
		want string
	}{
		{"a leader", fixed{l: lead}, `
slum_fleet_lease_epoch 3
slum_fleet_leader{holder="a"} 1
slum_fleet_leadership_read 1
slum_fleet_lease_renewed_seconds 1.5
slum_fleet_standbys 2
`},
		{"a standby", fixed{l: lead}, `
slum_fleet_lease_epoch 3
slum_fleet_leader{holder="a"} 1
slum_fleet_leadership_read 1
slum_fleet_lease_renewed_seconds 1.5
slum_fleet_standbys 2
`},
		{"lapsed lease: no one leads", fixed{l: lapsed}, `
slum_fleet_lease_epoch 3
slum_fleet_leadership_read 1
slum_fleet_lease_renewed_seconds 1.5
slum_fleet_standbys 2
`},
		{"no controller ever", fixed{l: slum.Leadership{}}, `
slum_fleet_leadership_read 1
slum_fleet_standbys 0
`},
		{"database away", fixed{err: errors.New("down")}, `
slum_fleet_leadership_read 0
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(tc.src)
			want := strings.Split(strings.TrimSpace(tc.want), "\n")
			slices.Sort(want)
			if got := samples(t, c); got != strings.Join(want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
			}
		})
	}
}

// samples is every sample c gathers, one "name{labels} value" a line,
// sorted.
func samples(t *testing.T, c *Collector) string {
	t.Helper()
	fams, err := c.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := f.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			lines = append(lines, fmt.Sprintf("%s %v", name, m.GetGauge().GetValue()))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
