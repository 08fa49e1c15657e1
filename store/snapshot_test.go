package store

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/slum-fleet/slum"
)

// shareStrings keeps every value and makes equal strings of tenants and
// instances one.
func TestShareStrings(t *testing.T) {
	// copies, as a driver reads each row's strings anew
	c := func(s string) string { return strings.Clone(s) }
	snap := &slum.Snapshot{
		Servers: []slum.Server{{ID: "s1"}, {ID: "s2"}},
		Tenants: []slum.Tenant{
			{ID: "a", Region: c("eu"), Failover: slum.FailoverPolicy(c("move")), Serving: slum.ServingPolicy(c("one")), Data: slum.DataPolicy(c("local"))},
			{ID: "b", Region: c("eu"), Failover: slum.FailoverPolicy(c("move")), Serving: slum.ServingPolicy(c("one")), Data: slum.DataPolicy(c("local"))},
		},
		Instances: []slum.Instance{
			{TenantID: c("a"), ID: "prod", Process: c("api"), ServerID: c("s1"), HomeServerID: c("s1"), DesiredState: slum.DesiredState(c("running")), Mode: slum.Mode(c("always"))},
			{TenantID: c("b"), ID: "prod", Process: c("api"), ServerID: c("s2"), HomeServerID: c("s1"), DesiredState: slum.DesiredState(c("running")), Mode: slum.Mode(c("always"))},
			{TenantID: c("gone"), ID: "x", Process: c("api"), ServerID: c("s2"), HomeServerID: c("s2"), DesiredState: slum.DesiredState(c("running")), Mode: slum.Mode(c("always"))},
		},
	}
	want := &slum.Snapshot{Servers: slices.Clone(snap.Servers), Tenants: slices.Clone(snap.Tenants), Instances: slices.Clone(snap.Instances)}
	shareStrings(snap)
	if !reflect.DeepEqual(snap, want) {
		t.Fatalf("values changed:\n%+v\nwant\n%+v", snap, want)
	}
	same := func(what, a, b string) {
		t.Helper()
		if unsafe.StringData(a) != unsafe.StringData(b) {
			t.Errorf("%s: %q and %q are two copies", what, a, b)
		}
	}
	same("tenant id", snap.Instances[0].TenantID, snap.Tenants[0].ID)
	same("tenant id", snap.Instances[1].TenantID, snap.Tenants[1].ID)
	same("server id", snap.Instances[0].ServerID, snap.Servers[0].ID)
	same("home server id", snap.Instances[1].HomeServerID, snap.Servers[0].ID)
	same("process", snap.Instances[0].Process, snap.Instances[2].Process)
	same("state", string(snap.Instances[0].DesiredState), string(snap.Instances[1].DesiredState))
	same("mode", string(snap.Instances[0].Mode), string(snap.Instances[2].Mode))
	same("region", snap.Tenants[0].Region, snap.Tenants[1].Region)
	same("failover", string(snap.Tenants[0].Failover), string(snap.Tenants[1].Failover))
	same("data", string(snap.Tenants[0].Data), string(snap.Tenants[1].Data))
}
