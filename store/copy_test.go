package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/slum-fleet/slum/db"
)

// A copy that differs from its source is told by its first difference,
// naming the table, the row and the field, but never a secret's value.
func TestCompareRowsNamesTheFirstDifference(t *testing.T) {
	base := func() *fleetRows {
		return &fleetRows{
			Servers:   []db.Server{{ID: "s1", Url: "http://a", Token: "secret-one"}, {ID: "s2", Url: "http://b", Token: "secret-two"}},
			Instances: []db.Instance{{TenantID: "t", ID: "a", Generation: 2}, {TenantID: "t", ID: "b"}},
			APITokens: []db.ApiToken{{ID: 1, Digest: []byte("digest-one")}},
			Settings:  db.FleetSetting{ID: 1, DeadAfter: 3},
			Revision:  7,
		}
	}
	if err := compareRows(base(), base()); err != nil {
		t.Fatalf("equal fleets: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(r *fleetRows)
		want   string
	}{
		"a field":        {func(r *fleetRows) { r.Instances[0].Generation = 3 }, "instances t:a: Generation: source \"2\", copy \"3\""},
		"a missing row":  {func(r *fleetRows) { r.Instances = r.Instances[1:] }, "instances t:a: missing from the copy"},
		"an extra row":   {func(r *fleetRows) { r.Servers = append(r.Servers, db.Server{ID: "s3"}) }, "servers s3: in the copy, not in the source"},
		"a token":        {func(r *fleetRows) { r.Servers[1].Token = "secret-other" }, "servers s2: Token differs"},
		"a digest":       {func(r *fleetRows) { r.APITokens[0].Digest = []byte("digest-two") }, "api_tokens 1: Digest differs"},
		"the settings":   {func(r *fleetRows) { r.Settings.DeadAfter = 4 }, "fleet_settings: DeadAfter: source \"3\", copy \"4\""},
		"the revision":   {func(r *fleetRows) { r.Revision = 8 }, "revision: source 7, copy 8"},
		"the first only": {func(r *fleetRows) { r.Servers[0].Url, r.Revision = "http://c", 9 }, "servers s1: Url"},
	} {
		copied := base()
		tc.change(copied)
		err := compareRows(base(), copied)
		var m *CopyMismatch
		if !errors.As(err, &m) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "digest-") {
			t.Errorf("%s: the error shows a secret: %v", name, err)
		}
	}
}

func TestEmptyAndSummary(t *testing.T) {
	r := &fleetRows{Settings: db.FleetSetting{ID: 1}, Revision: 3}
	if !r.empty() {
		t.Fatal("settings and revisions alone are an empty fleet")
	}
	r.Events = []db.Event{{ID: 1}}
	r.Servers = []db.Server{{ID: "s1"}, {ID: "s2"}}
	if r.empty() || r.summary() != "2 servers, 1 events" {
		t.Fatalf("empty %v, summary %q", r.empty(), r.summary())
	}
}
