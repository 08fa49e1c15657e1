package leadmetrics

import (
	"context"
	"errors"
	"fmt"
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
	lead := slum.Leadership{Leader: "a", Epoch: 3, ExpiresAt: time.Unix(10, 0), RenewedAgoMS: 1500,
		Standbys: []slum.Controller{{Holder: "b"}, {Holder: "c"}}}
	lapsed := lead
	lapsed.Expired = true
	for _, tc := range []struct {
		name, self string
		src        fixed
		want       string
	}{
		{"leader itself", "a", fixed{l: lead}, `
slum_controller_epoch 3
slum_controller_is_leader 1
slum_controller_leader{holder="a"} 1
slum_controller_leadership_read 1
slum_controller_lease_renewed_seconds 1.5
slum_controller_standbys 2
`},
		{"a standby", "b", fixed{l: lead}, `
slum_controller_epoch 3
slum_controller_is_leader 0
slum_controller_leader{holder="a"} 1
slum_controller_leadership_read 1
slum_controller_lease_renewed_seconds 1.5
slum_controller_standbys 2
`},
		{"lapsed lease: no one leads", "a", fixed{l: lapsed}, `
slum_controller_epoch 3
slum_controller_is_leader 0
slum_controller_leadership_read 1
slum_controller_lease_renewed_seconds 1.5
slum_controller_standbys 2
`},
		{"no controller ever", "", fixed{l: slum.Leadership{RenewedAgoMS: -1}}, `
slum_controller_is_leader 0
slum_controller_leadership_read 1
slum_controller_standbys 0
`},
		{"database away", "a", fixed{err: errors.New("down")}, `
slum_controller_leadership_read 0
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(tc.src, func() string { return tc.self })
			if got := samples(t, c); got != strings.TrimSpace(tc.want) {
				t.Fatalf("got\n%s\nwant\n%s", got, strings.TrimSpace(tc.want))
			}
		})
	}
}

// samples is every sample c gathers, one "name{labels} value" a line,
// sorted by name.
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
	return strings.Join(lines, "\n")
}
