package fleettest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/slum-fleet/slum"
)

// SnapshotSharesRepeatedStrings: a snapshot, which the controller holds
// for as long as its revision does, keeps one copy of a string that
// repeats on many rows: each instance's tenant id is its tenant's, and
// equal instance ids, servers and processes are one copy each, past runs
// of tenants with no instances.
func SnapshotSharesRepeatedStrings(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	var b strings.Builder
	b.WriteString("version: 1\nservers:\n  - {id: s1, url: 'http://10.0.0.1:8080', capacity_mb: 100000, token_env: TOK_S1}\n  - {id: s2, url: 'http://10.0.0.2:8080', capacity_mb: 100000, token_file: s2.token}\ntenants:\n")
	for i := range 40 {
		fmt.Fprintf(&b, "  - id: t%02d\n    domain: t%02d.example.com\n", i, i)
		if i%10 == 0 || i > 30 { // runs of nine tenants with none
			b.WriteString("    instances: [{id: prod, process: api, server: s1, memory_mb: 1}, {id: spare, process: api, server: s2, memory_mb: 1}]\n")
		}
	}
	if _, err := s.Apply(ctx, Source(t, parseFleet(t, b.String())), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Store.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Tenants) != 40 || len(snap.Instances) != 26 {
		t.Fatalf("%d tenants and %d instances, want 40 and 26", len(snap.Tenants), len(snap.Instances))
	}
	tenants := map[string]*byte{}
	for _, tn := range snap.Tenants {
		tenants[tn.ID] = unsafe.StringData(tn.ID)
	}
	copies := map[string]*byte{}
	same := func(what, v string) {
		if p, ok := copies[what+v]; ok && p != unsafe.StringData(v) {
			t.Errorf("two copies of %s %q", what, v)
		}
		copies[what+v] = unsafe.StringData(v)
	}
	for _, in := range snap.Instances {
		if unsafe.StringData(in.TenantID) != tenants[in.TenantID] {
			t.Errorf("%s has a tenant id of its own", in.Key())
		}
		same("instance id", in.ID)
		same("server", in.ServerID)
		same("server", in.HomeServerID)
		same("process", in.Process)
	}
}
