package fleettest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

func ServerIntegrity(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
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
	lease, err := s.Store.AcquireLease(ctx, "controller", "test", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.RecordPlacements(ctx, lease.Fence(), []slum.Placement{{ServerID: "s1", Name: "api:alice--prod", TenantID: "alice", InstanceID: "prod"}}); err != nil {
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
	// The controller records a batch planned before the server left: its
	// placements there are left out, the rest are recorded.
	mustServer(t, s, "s2", "", 1000)
	batch := []slum.Placement{
		{ServerID: "s2", Name: "api:bob--a", TenantID: "bob", InstanceID: "a"},
		{ServerID: "s1", Name: "api:bob--b", TenantID: "bob", InstanceID: "b"},
		{ServerID: "s2", Name: "api:bob--c", TenantID: "bob", InstanceID: "c"},
	}
	if err := s.Store.RecordPlacements(ctx, lease.Fence(), batch); err != nil {
		t.Fatalf("recording placements on a server that left: %v", err)
	}
	got, err := s.Store.ListPlacements(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, p.ServerID+"/"+p.Name)
	}
	if strings.Join(names, " ") != "s2/api:bob--a s2/api:bob--c" {
		t.Fatalf("placements recorded: %v, want s2/api:bob--a s2/api:bob--c", names)
	}
}

func TenantIntegrity(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
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

func InstanceIntegrity(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
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

func Placement(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
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

func DrainAndMove(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
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

func RevisionBumpsOnDesiredWritesOnly(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	r0, _ := s.Store.Revision(ctx)
	mustServer(t, s, "s1", "", 100)
	r1, _ := s.Store.Revision(ctx)
	if r1 != r0+1 {
		t.Fatalf("revision %d -> %d after a server add", r0, r1)
	}
	lease, err := s.Store.AcquireLease(ctx, "controller", "test", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	st0, _ := s.Store.StatusRevision(ctx)
	if err := s.Store.WriteReport(ctx, lease.Fence(), slum.Report{Events: []slum.Event{{Object: "x", Reason: "y", Message: "z"}}}); err != nil {
		t.Fatal(err)
	}
	if r2, _ := s.Store.Revision(ctx); r2 != r1 {
		t.Fatal("a status report bumped the desired revision")
	}
	if st1, _ := s.Store.StatusRevision(ctx); st1 != st0+1 {
		t.Fatalf("status revision %d -> %d after a report", st0, st1)
	}
	if _, err := s.AddServer(ctx, slum.Server{ID: "s1", URL: "http://x", CapacityMB: 1}); err == nil {
		t.Fatal("duplicate accepted")
	}
	if r3, _ := s.Store.Revision(ctx); r3 != r1 {
		t.Fatal("a rejected write bumped the revision")
	}
}

func RespawnAppliesEveryGivenFieldOrNothing(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	mustServer(t, s, "s1", "", 1000)
	mustTenant(t, s, "a", "")
	spawn := func(spec slum.InstanceSpec) (slum.Instance, error) {
		spec.TenantID, spec.ID, spec.Process = "a", "p", "api"
		return s.SpawnInstance(ctx, spec)
	}
	in, err := spawn(slum.InstanceSpec{Mode: slum.ModeOnDemand})
	if err != nil || in.MemoryMB != slum.DefaultMemoryMB || in.Mode != slum.ModeOnDemand {
		t.Fatalf("first spawn: %+v %v", in, err)
	}
	// Nothing given: nothing changes, not even the mode back to its default.
	if again, err := spawn(slum.InstanceSpec{}); err != nil || again != in {
		t.Fatalf("a bare re-spawn: %+v %v", again, err)
	}
	// Memory and mode given: both applied.
	if in, err = spawn(slum.InstanceSpec{MemoryMB: 512, Mode: slum.ModeAlways}); err != nil || in.MemoryMB != 512 || in.Mode != slum.ModeAlways {
		t.Fatalf("re-spawn with memory and mode: %+v %v", in, err)
	}
	// More memory than the server has: refused whole, the mode included.
	before := snapshot(t, s)
	_, err = spawn(slum.InstanceSpec{MemoryMB: 2000, Mode: slum.ModeOnDemand})
	if !errors.Is(err, slum.ErrNoCapacity) || !strings.Contains(err.Error(), "server s1 has 1000 MB for it, not the 2000 MB asked") {
		t.Fatalf("re-spawn beyond capacity: %v", err)
	}
	if snapshot(t, s) != before {
		t.Fatal("a refused re-spawn changed the database")
	}
	// A stopped instance is started with the new memory.
	if _, err := s.StopInstance(ctx, "a:p"); err != nil {
		t.Fatal(err)
	}
	if in, err = spawn(slum.InstanceSpec{MemoryMB: 1000}); err != nil || in.MemoryMB != 1000 || in.DesiredState != slum.StateRunning {
		t.Fatalf("re-spawn of a stopped instance: %+v %v", in, err)
	}
	// Negative memory is invalid; zero means "not given".
	if _, err := spawn(slum.InstanceSpec{MemoryMB: -1}); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("negative memory: %v", err)
	}
}

// The overview's counts, which SQLite makes, are what reading every
// instance and its status gives.
func OverviewCounts(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	for _, id := range []string{"s1", "s2", "s3"} {
		mustServer(t, s, id, "", 10000)
	}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		mustTenant(t, s, id, "")
		if _, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: id, ID: "prod", Process: "api", ServerID: "s1"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "a", ID: "backup", Process: "api", ServerID: "s2"}); err != nil {
		t.Fatal(err)
	}
	lease, err := s.Store.AcquireLease(ctx, "controller", "test", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.Store.WriteReport(ctx, lease.Fence(), slum.Report{Instances: []slum.InstanceStatus{
		{TenantID: "a", InstanceID: "prod", Phase: slum.PhaseRunning, UpdatedAt: now},
		{TenantID: "b", InstanceID: "prod", Phase: slum.PhaseRunning, UpdatedAt: now},
		{TenantID: "c", InstanceID: "prod", Phase: slum.PhaseFailed, UpdatedAt: now},
		{TenantID: "d", InstanceID: "prod", Phase: "", UpdatedAt: now},
		{TenantID: "gone", InstanceID: "prod", Phase: slum.PhaseRunning, UpdatedAt: now},
	}}); err != nil {
		t.Fatal(err)
	}
	in, _ := s.GetInstance(ctx, "e:prod")
	if _, err := s.Store.Reschedule(ctx, lease.Fence(), []slum.Reschedule{{TenantID: "e", InstanceID: "prod", From: "s1", To: "s3", Generation: in.Generation, Reason: "test"}}); err != nil {
		t.Fatal(err)
	}
	o, err := s.Overview(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[slum.Phase]int{slum.PhaseRunning: 2, slum.PhaseFailed: 1, slum.PhasePending: 3}
	if o.Tenants != 5 || o.Instances != 6 || o.FailedOver != 1 || !reflect.DeepEqual(o.Phases, want) {
		t.Fatalf("overview: %d tenants, %d instances, %d failed over, phases %v", o.Tenants, o.Instances, o.FailedOver, o.Phases)
	}
}

// ReplicatedData: a tenant's data policy and replica are kept, shown and
// changed as declared; a bad one is refused and changes nothing.
func ReplicatedData(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	const url = "s3://replicas/tenants/carol?endpoint=http://127.0.0.1:8333"
	mustTenant(t, s, "alice", "")
	if got, err := s.GetTenant(ctx, "alice"); err != nil || got.Data != slum.DataLocal || got.Replica != "" {
		t.Fatalf("a tenant's data is local by default: %+v %v", got, err)
	}
	added, _, err := s.AddTenant(ctx, slum.Tenant{ID: "carol", Domain: "carol.example.com", Data: slum.DataReplicated, Replica: url})
	if err != nil || added.Data != slum.DataReplicated || added.Replica != url {
		t.Fatalf("add replicated: %+v %v", added, err)
	}
	if got, err := s.GetTenant(ctx, "carol"); err != nil || got.Data != slum.DataReplicated || got.Replica != url {
		t.Fatalf("get replicated: %+v %v", got, err)
	}
	before := snapshot(t, s)
	repl, local := slum.DataReplicated, slum.DataLocal
	for name, u := range map[string]slum.TenantUpdate{
		"replicated without a replica": {Data: &repl},
		"a replica with credentials":   {Data: &repl, Replica: ptr("s3://key:hunter2@replicas/alice")},
		"a replica that is not s3":     {Data: &repl, Replica: ptr("https://replicas/alice")},
		"a replica of local data":      {Replica: ptr(url)},
	} {
		_, err := s.UpdateTenant(ctx, "alice", u)
		if !errors.Is(err, slum.ErrInvalid) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := s.AddTenant(ctx, slum.Tenant{ID: "dave", Domain: "dave.example.com", Data: "shared"}); !errors.Is(err, slum.ErrInvalid) {
		t.Errorf("an unknown data policy: %v", err)
	}
	if snapshot(t, s) != before {
		t.Fatal("a rejected data change left something behind")
	}
	if got, err := s.UpdateTenant(ctx, "alice", slum.TenantUpdate{Data: &repl, Replica: ptr(url)}); err != nil || got.Data != repl || got.Replica != url {
		t.Fatalf("make alice replicated: %+v %v", got, err)
	}
	if got, err := s.UpdateTenant(ctx, "carol", slum.TenantUpdate{Data: &local}); err != nil || got.Data != local || got.Replica != "" {
		t.Fatalf("a tenant made local drops its replica: %+v %v", got, err)
	}
	if got, err := s.GetTenant(ctx, "carol"); err != nil || got.Data != local || got.Replica != "" {
		t.Fatalf("carol after the update: %+v %v", got, err)
	}
}

func ptr[T any](v T) *T { return &v }
