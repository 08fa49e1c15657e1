package store

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/slum-fleet/slum"
)

func TestInternerKeepsOneCopyOfEachValue(t *testing.T) {
	w := interner{}
	a := w.of(strings.Clone("s1"))
	b := w.of(strings.Clone("s1"))
	if a != "s1" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatalf("two equal values are two copies")
	}
	if c := w.of(strings.Clone("s2")); c != "s2" || unsafe.StringData(c) == unsafe.StringData(a) {
		t.Fatalf("another value came back as %q", c)
	}
	// Full, it hands back what it is given and keeps nothing more.
	for i := len(w); i < maxInterned; i++ {
		w.of(strconv.Itoa(i))
	}
	fresh := strings.Clone("one more")
	if got := w.of(fresh); got != fresh || unsafe.StringData(got) != unsafe.StringData(fresh) || len(w) != maxInterned {
		t.Fatalf("a full interner kept %q (%d values)", got, len(w))
	}
	if got := w.of(strings.Clone("s1")); unsafe.StringData(got) != unsafe.StringData(a) {
		t.Fatal("a full interner lost the values it held")
	}
}

// Instances read in the tenants' order share their tenant's copy of its
// id, past any run of tenants with no instances; an id not among the
// tenants, or behind the cursor, is kept as read, and the cursor stays.
func TestTenantIDsShareTheTenantsCopy(t *testing.T) {
	var tenants []slum.Tenant
	for i := range 200 {
		tenants = append(tenants, slum.Tenant{ID: "t" + strconv.Itoa(1000+i)})
	}
	id := func(i int) string { return strings.Clone(tenants[i].ID) }
	for _, tc := range []struct {
		name  string
		reads []string
		share []bool
	}{
		{"each tenant's instances in turn", []string{id(0), id(0), id(1), id(2), id(2)}, []bool{true, true, true, true, true}},
		{"past a few tenants with none", []string{id(0), id(tenantLookahead - 1), id(tenantLookahead)}, []bool{true, true, true}},
		{"past a long run of tenants with none", []string{id(0), id(150), id(151), id(199)}, []bool{true, true, true, true}},
		{"unknown, then on", []string{id(0), "t9", "t1000x", id(1)}, []bool{true, false, false, true}},
		{"behind the cursor", []string{id(30), id(1), id(31)}, []bool{true, false, true}},
		{"past the last", []string{id(199), "t9999", id(199)}, []bool{true, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids := tenantIDs{tenants: tenants}
			for i, read := range tc.reads {
				got := ids.of(read)
				if got != read {
					t.Fatalf("read %q, got %q", read, got)
				}
				shared := false
				for _, tn := range tenants {
					shared = shared || unsafe.StringData(got) == unsafe.StringData(tn.ID)
				}
				if shared != tc.share[i] {
					t.Errorf("read %d (%q): shares a tenant's copy %v, want %v", i, read, shared, tc.share[i])
				}
			}
		})
	}
}
