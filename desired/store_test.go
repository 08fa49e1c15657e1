package desired

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

func openStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "slum.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustServer(t testing.TB, s *Store, id, region string, capacity int64) {
	t.Helper()
	if _, err := s.AddServer(context.Background(), slum.Server{ID: id, URL: "http://" + id + ".test:8080", Region: region, CapacityMB: capacity, Token: "tok-" + id}); err != nil {
		t.Fatal(err)
	}
}

func mustTenant(t testing.TB, s *Store, id, region string) {
	t.Helper()
	if _, _, err := s.AddTenant(context.Background(), slum.Tenant{ID: id, Domain: id + ".example.com", Region: region}); err != nil {
		t.Fatal(err)
	}
}

// snapshot is every desired row, to show that a rejected call changed
// nothing.
func snapshot(t testing.TB, s *Store) string {
	t.Helper()
	ctx := context.Background()
	srv, err1 := s.ListServers(ctx)
	ten, err2 := s.ListTenants(ctx)
	ins, err3 := s.ListInstances(ctx)
	rev, err4 := s.Revision(ctx)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal([]any{srv, ten, ins, rev})
	return string(b)
}

func TestDatabaseFileIsPrivate(t *testing.T) {
	s := openStore(t)
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("database mode %v, want 0600 (it holds tokens)", fi.Mode().Perm())
	}
}

func TestReopenKeepsDataAndSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slum.db")
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustServer(t, s, "s1", "", 100)
	v1, err := s.db.SchemaVersion(ctx)
	if err != nil || v1 < 1 {
		t.Fatalf("schema version %d, %v", v1, err)
	}
	s.Close()
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v2, _ := s.db.SchemaVersion(ctx); v2 != v1 {
		t.Fatalf("schema version went from %d to %d on reopen", v1, v2)
	}
	if _, err := s.GetServer(ctx, "s1"); err != nil {
		t.Fatalf("data lost on reopen: %v", err)
	}
}

func TestTokenNeverInJSON(t *testing.T) {
	s := openStore(t)
	mustServer(t, s, "s1", "", 100)
	srv, err := s.GetServer(context.Background(), "s1")
	if err != nil {
		t.Fatal(err)
	}
	if srv.Token != "tok-s1" {
		t.Fatalf("token not stored: %q", srv.Token)
	}
	b, _ := json.Marshal(srv)
	if strings.Contains(string(b), "tok-s1") {
		t.Fatalf("JSON shows the token: %s", b)
	}
}

func TestServerIntegrity(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	mustServer(t, s, "s1", "eu", 1000)

	if _, err := s.AddServer(ctx, slum.Server{ID: "s1", URL: "http://x", CapacityMB: 1}); !errors.Is(err, slum.ErrAlreadyExists) {
		t.Fatalf("duplicate server: %v", err)
	}
	before := snapshot(t, s)
	for name, bad := range map[string]slum.Server{
		"bad id":       {ID: "S1", URL: "http://x", CapacityMB: 1},
		"bad url":      {ID: "s2", URL: "x:80", CapacityMB: 1},
		"zero cap":     {ID: "s2", URL: "http://x", CapacityMB: 0},
		"negative cap": {ID: "s2", URL: "http://x", CapacityMB: -5},
		"bad region":   {ID: "s2", URL: "http://x", CapacityMB: 1, Region: "EU West"},
		"bad domain":   {ID: "s2", URL: "http://x", CapacityMB: 1, Domain: "a..b"},
		"bad token":    {ID: "s2", URL: "http://x", CapacityMB: 1, Token: "a b"},
	} {
		if _, err := s.AddServer(ctx, bad); !errors.Is(err, slum.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if snapshot(t, s) != before {
		t.Fatal("a rejected add changed the database")
	}
	if _, err := s.GetServer(ctx, "nope"); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("get missing server: %v", err)
	}
	if _, err := s.UpdateServer(ctx, "nope", slum.ServerUpdate{}); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("update missing server: %v", err)
	}
	srv, _ := s.GetServer(ctx, "s1")
	if srv.Domain != "s1.test" {
		t.Fatalf("default domain %q, want the URL's host", srv.Domain)
	}

	mustTenant(t, s, "alice", "")
	if _, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "prod", Process: "api", ServerID: "s1", MemoryMB: 600}); err != nil {
		t.Fatal(err)
	}
	small := int64(500)
	if _, err := s.UpdateServer(ctx, "s1", slum.ServerUpdate{CapacityMB: &small}); !errors.Is(err, slum.ErrNoCapacity) {
		t.Fatalf("shrinking below use: %v", err)
	}
	if err := s.RemoveServer(ctx, "s1", false); !errors.Is(err, slum.ErrHasActiveTenants) {
		t.Fatalf("removing a server with instances: %v", err)
	}
	if err := s.RemoveTenant(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	// A copy the controller placed and has yet to stop holds the server.
	lease, err := s.AcquireLease(ctx, "controller", "test", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RecordPlacements(ctx, lease.Fence(), []slum.Placement{{ServerID: "s1", Name: "api:alice--prod", TenantID: "alice", InstanceID: "prod"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveServer(ctx, "s1", false); !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("removing a server with copies to stop: %v", err)
	}
	if err := s.RemoveServer(ctx, "s1", true); err != nil {
		t.Fatalf("forced remove: %v", err)
	}
	if err := s.RemoveServer(ctx, "s1", false); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("removing a removed server: %v", err)
	}
}

func TestTenantIntegrity(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	mustServer(t, s, "s1", "", 1000)
	mustTenant(t, s, "alice", "")

	if _, _, err := s.AddTenant(ctx, slum.Tenant{ID: "alice", Domain: "other.example.com"}); !errors.Is(err, slum.ErrAlreadyExists) {
		t.Fatalf("duplicate tenant: %v", err)
	}
	if _, _, err := s.AddTenant(ctx, slum.Tenant{ID: "bob", Domain: "alice.example.com"}); !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("duplicate domain: %v", err)
	}
	before := snapshot(t, s)
	if _, _, err := s.AddTenant(ctx, slum.Tenant{ID: "bob", Domain: "bob.example.com"}, slum.InstanceSpec{ID: "prod", Process: "api", ServerID: "nope"}); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("tenant with an instance on a missing server: %v", err)
	}
	if _, _, err := s.AddTenant(ctx, slum.Tenant{ID: "bob", Domain: "bob.example.com"}, slum.InstanceSpec{ID: "prod", Process: "API"}); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("tenant with a bad process: %v", err)
	}
	if snapshot(t, s) != before {
		t.Fatal("a rejected tenant add left something behind")
	}
	if _, err := s.UpdateTenant(ctx, "nope", slum.TenantUpdate{}); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("update missing tenant: %v", err)
	}
	mustTenant(t, s, "bob", "")
	taken := "alice.example.com"
	if _, err := s.UpdateTenant(ctx, "bob", slum.TenantUpdate{Domain: &taken}); !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("update to a taken domain: %v", err)
	}
	got, err := s.GetTenantByDomain(ctx, "bob.example.com")
	if err != nil || got.ID != "bob" {
		t.Fatalf("by domain: %v %v", got, err)
	}
	if err := s.RemoveTenant(ctx, "nope"); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("remove missing tenant: %v", err)
	}
}

func TestInstanceIntegrity(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	mustServer(t, s, "s1", "", 1000)
	mustServer(t, s, "s2", "", 1000)
	mustTenant(t, s, "alice", "")

	for name, tc := range map[string]struct {
		spec slum.InstanceSpec
		want error
	}{
		"missing tenant": {slum.InstanceSpec{TenantID: "nobody", ID: "prod", Process: "api", ServerID: "s1"}, slum.ErrNotFound},
		"missing server": {slum.InstanceSpec{TenantID: "alice", ID: "prod", Process: "api", ServerID: "s9"}, slum.ErrNotFound},
		"bad id":         {slum.InstanceSpec{TenantID: "alice", ID: "../x", Process: "api"}, slum.ErrInvalid},
		"bad process":    {slum.InstanceSpec{TenantID: "alice", ID: "prod", Process: "a:b"}, slum.ErrInvalid},
		"zero memory":    {slum.InstanceSpec{TenantID: "alice", ID: "prod", Process: "api", MemoryMB: -1}, slum.ErrInvalid},
		"bad mode":       {slum.InstanceSpec{TenantID: "alice", ID: "prod", Process: "api", Mode: "sometimes"}, slum.ErrInvalid},
		"too big":        {slum.InstanceSpec{TenantID: "alice", ID: "prod", Process: "api", ServerID: "s1", MemoryMB: 1001}, slum.ErrNoCapacity},
		"nothing fits":   {slum.InstanceSpec{TenantID: "alice", ID: "prod", Process: "api", MemoryMB: 5000}, slum.ErrNoCapacity},
		"name over 63":   {slum.InstanceSpec{TenantID: "alice", ID: strings.Repeat("x", 60), Process: "api"}, slum.ErrInvalid},
	} {
		before := snapshot(t, s)
		if _, err := s.SpawnInstance(ctx, tc.spec); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
		if snapshot(t, s) != before {
			t.Errorf("%s: the rejected spawn changed the database", name)
		}
	}

	prod, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "prod", Process: "api", ServerID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	if prod.Generation != 1 || prod.TenementName() != "api:alice--prod" {
		t.Fatalf("spawned %+v", prod)
	}
	if _, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "backup", Process: "api", ServerID: "s1"}); !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("second instance of a process on one server: %v", err)
	}
	backup, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "backup", Process: "api"})
	if err != nil || backup.ServerID != "s2" {
		t.Fatalf("backup placed on %q (%v), want s2", backup.ServerID, err)
	}
	if _, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "third", Process: "api"}); !errors.Is(err, slum.ErrNoCapacity) ||
		!strings.Contains(err.Error(), "anti-affinity") {
		t.Fatalf("third api instance with two servers: %v", err)
	}
	// A different process may share the server.
	if _, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "worker", Process: "jobs", ServerID: "s1"}); err != nil {
		t.Fatal(err)
	}

	stopped, err := s.StopInstance(ctx, "alice:prod")
	if err != nil || stopped.DesiredState != slum.StateStopped || stopped.Generation != 2 {
		t.Fatalf("stop: %+v %v", stopped, err)
	}
	again, err := s.StopInstance(ctx, "alice:prod")
	if err != nil || again.Generation != 2 {
		t.Fatalf("second stop changed the generation: %+v %v", again, err)
	}
	started, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "prod", Process: "api"})
	if err != nil || started.DesiredState != slum.StateRunning || started.Generation != 3 || started.ServerID != "s1" {
		t.Fatalf("respawn: %+v %v", started, err)
	}
	if _, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "prod", Process: "web"}); !errors.Is(err, slum.ErrAlreadyExists) {
		t.Fatalf("respawn as another process: %v", err)
	}
	if _, err := s.StopInstance(ctx, "alice:nope"); !errors.Is(err, slum.ErrNotFound) {
		t.Fatalf("stop missing: %v", err)
	}
	if _, err := s.StopInstance(ctx, "alice"); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("stop without instance: %v", err)
	}
	st, err := s.InstanceStatus(ctx, "alice:prod")
	if err != nil || st.Phase != "pending" {
		t.Fatalf("status before any controller: %+v %v", st, err)
	}
	on1, _ := s.ListInstancesOnServer(ctx, "s1")
	if len(on1) != 2 {
		t.Fatalf("instances on s1: %v", on1)
	}
	stats, err := s.ServerStats(ctx, "s1")
	if err != nil || stats.UsedMB != 2*slum.DefaultMemoryMB || stats.FreeMB != 1000-2*slum.DefaultMemoryMB || stats.Tenants != 1 || stats.Instances != 2 {
		t.Fatalf("stats: %+v %v", stats, err)
	}
}

func TestPlacement(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	mustServer(t, s, "eu-1", "eu", 1000)
	mustServer(t, s, "eu-2", "eu", 1000)
	mustServer(t, s, "us-1", "us", 4000)
	mustTenant(t, s, "alice", "eu")
	mustTenant(t, s, "bob", "us")
	mustTenant(t, s, "carol", "")

	place := func(tenant, id string, mem int64) string {
		t.Helper()
		in, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: tenant, ID: id, Process: "api", MemoryMB: mem})
		if err != nil {
			t.Fatalf("place %s:%s: %v", tenant, id, err)
		}
		return in.ServerID
	}
	if got := place("alice", "prod", 400); got != "eu-1" {
		t.Fatalf("alice:prod on %s, want eu-1 (in region, least used, then by id)", got)
	}
	if got := place("alice", "backup", 400); got != "eu-2" {
		t.Fatalf("alice:backup on %s, want eu-2 (anti-affinity)", got)
	}
	if got := place("bob", "prod", 100); got != "us-1" {
		t.Fatalf("bob:prod on %s, want us-1 (region)", got)
	}
	// No region: least used share of capacity wins (us-1 is 100/4000).
	if got := place("carol", "prod", 100); got != "us-1" {
		t.Fatalf("carol:prod on %s, want us-1 (least used)", got)
	}
	// The region is full: alice's third instance goes elsewhere.
	if got := place("alice", "third", 700); got != "us-1" {
		t.Fatalf("alice:third on %s, want us-1 (region full)", got)
	}
	if _, err := s.SetServerState(ctx, "us-1", slum.ServerCordoned); err != nil {
		t.Fatal(err)
	}
	_, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "bob", ID: "backup", Process: "api", MemoryMB: 700})
	if !errors.Is(err, slum.ErrNoCapacity) {
		t.Fatalf("with us-1 cordoned: %v", err)
	}
	for _, want := range []string{"1 cordoned", "2 without 700 MB free"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if _, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "bob", ID: "backup", Process: "api", ServerID: "us-1"}); !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("explicit spawn on a cordoned server: %v", err)
	}
}

func TestDrainAndMove(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	mustServer(t, s, "s1", "", 1000)
	mustServer(t, s, "s2", "", 1000)
	mustServer(t, s, "s3", "", 300)
	mustTenant(t, s, "alice", "")
	mustTenant(t, s, "bob", "")
	for _, spec := range []slum.InstanceSpec{
		{TenantID: "alice", ID: "prod", Process: "api", ServerID: "s1", MemoryMB: 500},
		{TenantID: "alice", ID: "backup", Process: "api", ServerID: "s2", MemoryMB: 500},
		{TenantID: "bob", ID: "prod", Process: "api", ServerID: "s1", MemoryMB: 200},
	} {
		if _, err := s.SpawnInstance(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	// alice:prod fits nowhere: s2 has alice's backup, s3 is too small.
	before := snapshot(t, s)
	if _, err := s.Drain(ctx, "s1"); !errors.Is(err, slum.ErrNoCapacity) {
		t.Fatalf("drain without room: %v", err)
	}
	if snapshot(t, s) != before {
		t.Fatal("a failed drain changed the database")
	}
	big := int64(1000)
	if _, err := s.UpdateServer(ctx, "s3", slum.ServerUpdate{CapacityMB: &big}); err != nil {
		t.Fatal(err)
	}
	moves, err := s.Drain(ctx, "s1")
	if err != nil || len(moves) != 2 {
		t.Fatalf("drain: %v %v", moves, err)
	}
	in, _ := s.GetInstance(ctx, "alice:prod")
	if in.ServerID != "s3" || in.Generation != 2 {
		t.Fatalf("alice:prod after drain: %+v", in)
	}
	srv, _ := s.GetServer(ctx, "s1")
	if srv.State != slum.ServerDraining {
		t.Fatalf("state %s", srv.State)
	}
	if left, _ := s.ListInstancesOnServer(ctx, "s1"); len(left) != 0 {
		t.Fatalf("left on s1: %v", left)
	}
	if _, err := s.MoveInstance(ctx, "bob:prod", "s1"); !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("move onto a draining server: %v", err)
	}
	mv, err := s.MoveInstance(ctx, "bob:prod", "")
	if err != nil || mv.To == mv.From {
		t.Fatalf("move: %+v %v", mv, err)
	}
	if _, err := s.SetServerState(ctx, "s1", slum.ServerActive); err != nil {
		t.Fatal(err)
	}
	if mv, err := s.MoveInstance(ctx, "alice:prod", "s1"); err != nil || mv.From != "s3" || mv.To != "s1" {
		t.Fatalf("move back: %+v %v", mv, err)
	}
}

func TestRevisionBumpsOnDesiredWritesOnly(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	r0, _ := s.Revision(ctx)
	mustServer(t, s, "s1", "", 100)
	r1, _ := s.Revision(ctx)
	if r1 != r0+1 {
		t.Fatalf("revision %d -> %d after a server add", r0, r1)
	}
	lease, err := s.AcquireLease(ctx, "controller", "test", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	st0, _ := s.StatusRevision(ctx)
	if err := s.WriteReport(ctx, lease.Fence(), slum.Report{Events: []slum.Event{{Object: "x", Reason: "y", Message: "z"}}}); err != nil {
		t.Fatal(err)
	}
	if r2, _ := s.Revision(ctx); r2 != r1 {
		t.Fatal("a status report bumped the desired revision")
	}
	if st1, _ := s.StatusRevision(ctx); st1 != st0+1 {
		t.Fatalf("status revision %d -> %d after a report", st0, st1)
	}
	if _, err := s.AddServer(ctx, slum.Server{ID: "s1", URL: "http://x", CapacityMB: 1}); err == nil {
		t.Fatal("duplicate accepted")
	}
	if r3, _ := s.Revision(ctx); r3 != r1 {
		t.Fatal("a rejected write bumped the revision")
	}
}
