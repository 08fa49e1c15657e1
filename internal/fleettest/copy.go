package fleettest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/store"
)

// Populate fills s with a fleet that has something in every table a copy
// carries: servers with tokens, tenants of both policies, instances
// failed over (home and current server apart), ranked and of several
// generations, the ledger, a removal, changed settings, API tokens (one
// revoked), holds (one approved), events, the controller's status and
// both revisions moved on. It returns the live API token's secret.
func Populate(t testing.TB, s *store.Store) string {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range []string{"s1", "s2", "s3"} {
		_, err := s.AddServer(ctx, slum.Server{ID: id, URL: "http://" + id + ".test:8080", Region: []string{"eu", "eu", "us"}[i], CapacityMB: 4096, Token: "tok-" + id})
		must(err)
	}
	_, _, err := s.AddTenant(ctx, slum.Tenant{ID: "alice", Domain: "alice.example.com", Region: "eu"},
		slum.InstanceSpec{ID: "prod", Process: "api", ServerID: "s1", MemoryMB: 256},
		slum.InstanceSpec{ID: "backup", Process: "api", ServerID: "s2", MemoryMB: 256})
	must(err)
	_, _, err = s.AddTenant(ctx, slum.Tenant{ID: "bob", Domain: "bob.example.com", Failover: slum.FailoverNone, Serving: slum.ServingAll,
		Data: slum.DataReplicated, Replica: "s3://replicas/tenants/bob?endpoint=http://127.0.0.1:8333"},
		slum.InstanceSpec{ID: "web", Process: "web", ServerID: "s3", Mode: slum.ModeOnDemand})
	must(err)
	_, err = s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "bob", ID: "old", Process: "worker", ServerID: "s3"})
	must(err)
	must(s.RemoveInstance(ctx, "bob:old"))
	_, err = s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "prod", Process: "api", MemoryMB: 512})
	must(err)
	set, err := s.Settings(ctx)
	must(err)
	set.DeadAfter, set.Failback = 5, slum.FailbackReturn
	_, err = s.SetSettings(ctx, set)
	must(err)

	lease, err := s.AcquireLease(ctx, "controller", "populate", "", time.Hour)
	must(err)
	f := lease.Fence()
	must(s.RecordPlacements(ctx, f, []slum.Placement{{ServerID: "s1", Name: "api:alice--prod", TenantID: "alice", InstanceID: "prod"},
		{ServerID: "s3", Name: "worker:bob--old", TenantID: "bob", InstanceID: "old"}}))
	prod, err := s.GetInstance(ctx, "alice:prod")
	must(err)
	_, err = s.Reschedule(ctx, f, []slum.Reschedule{{TenantID: "alice", InstanceID: "prod", From: "s1", To: "s3", Generation: prod.Generation, Reason: "s1 died"}})
	must(err)
	now := time.UnixMilli(1_700_000_000_123)
	must(s.WriteReport(ctx, f, slum.Report{
		Instances: []slum.InstanceStatus{{TenantID: "alice", InstanceID: "prod", ServerID: "s3", Phase: slum.PhaseRunning, Health: slum.InstanceHealthy, Attempts: 2, ObservedGeneration: 3, UpdatedAt: now}},
		Servers:   []slum.ServerStatus{{ServerID: "s1", Health: slum.HealthDead, HealthSince: now, LastError: "connection refused", ConsecutiveFailures: 4, UpdatedAt: now}},
		Tenants:   []slum.TenantStatus{{TenantID: "alice", Serving: []slum.CopyRef{{Instance: "prod", Server: "s3"}}, ChangedAt: now, UpdatedAt: now}},
		Events:    []slum.Event{{At: now, Object: "server/s1", Reason: slum.ReasonSpawned, Message: "a report's event"}},
	}))
	holds, err := s.SyncHolds(ctx, f, []slum.HoldSpec{{Kind: slum.HoldMassStop, Fingerprint: "fp-1", Summary: "stop 40 instances", Detail: "[]"},
		{Kind: slum.HoldPartition, Fingerprint: "fp-2", Summary: "fail over 3 servers", Detail: "[]"}})
	must(err)
	_, err = s.ApproveHold(ctx, holds[0].ID, "ann")
	must(err)
	revoked, _, err := s.CreateAPIToken(ctx, slum.RoleAdmin, "old laptop")
	must(err)
	_, err = s.RevokeAPIToken(ctx, revoked.ID)
	must(err)
	_, secret, err := s.CreateAPIToken(ctx, slum.RoleRouter, "router")
	must(err)
	return secret
}

// Dump is everything a fleet shows through its store, but its change-log
// positions and leases, as JSON: two fleets with one dump are the same.
func Dump(t testing.TB, s *store.Store) string {
	t.Helper()
	ctx := context.Background()
	snap, err1 := s.Snapshot(ctx)
	ps, err2 := s.ListPlacements(ctx)
	toks, err3 := s.ListAPITokens(ctx)
	holds, err4 := s.RecentHolds(ctx, 1000)
	evs, err5 := s.Events(ctx, 0, 100000)
	ist, err6 := s.ListInstanceStatus(ctx)
	sst, err7 := s.ListServerStatus(ctx)
	tst, err8 := s.ListTenantStatus(ctx)
	srev, err9 := s.StatusRevision(ctx)
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7, err8, err9); err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for _, srv := range snap.Servers {
		tokens = append(tokens, srv.ID+"="+srv.Token) // not in a server's JSON
	}
	b, err := json.MarshalIndent(map[string]any{"snapshot": snap, "tokens": tokens, "placements": ps, "api_tokens": toks, "holds": holds,
		"events": evs, "instance_status": ist, "server_status": sst, "tenant_status": tst, "status_revision": srev}, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Copies checks store.Copy from a fleet on one engine to one on another,
// and back: open opens a new, empty store on the engine named.
func Copies(t *testing.T, open map[string]func(testing.TB) *store.Store) {
	var names []string
	for n := range open {
		names = append(names, n)
	}
	if len(names) != 2 {
		t.Fatalf("Copies takes two engines, not %v", names)
	}
	for _, pair := range [][2]string{{names[0], names[1]}, {names[1], names[0]}} {
		t.Run(pair[0]+"→"+pair[1]+"→"+pair[0], func(t *testing.T) { copyRoundTrip(t, open[pair[0]], open[pair[1]]) })
	}
	t.Run("TargetNotEmpty", func(t *testing.T) { copyRefusesAFleet(t, open[names[0]], open[names[1]]) })
}

func copyRoundTrip(t *testing.T, openA, openB func(testing.TB) *store.Store) {
	ctx := context.Background()
	src := openA(t)
	secret := Populate(t, src)
	want := Dump(t, src)
	mid := openB(t)
	res, err := store.Copy(ctx, src, mid, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Replaced || res.SourceChanged || res.Rows["instances"] != 3 || res.Rows["api_tokens"] != 2 || res.Rows["events"] == 0 {
		t.Fatalf("copy result %+v", res)
	}
	if got := Dump(t, mid); got != want {
		t.Fatalf("the copy differs:\n%s", lineDiff(want, got))
	}
	if in, err := mid.GetInstance(ctx, "alice:prod"); err != nil || in.HomeServerID != "s1" || in.ServerID != "s3" || in.Generation < 3 {
		t.Fatalf("a failed-over instance on the copy: %+v %v", in, err)
	}
	// The tokens work on the copy, and new ids follow the copied ones.
	if tok, err := mid.VerifyAPIToken(ctx, secret); err != nil || tok.Role != slum.RoleRouter {
		t.Fatalf("the API token on the copy: %+v %v", tok, err)
	}
	rec, _, err := mid.CreateAPIToken(ctx, slum.RoleRead, "new")
	if err != nil || rec.ID != 3 {
		t.Fatalf("a new token on the copy: %+v %v (want id 3)", rec, err)
	}
	back := openA(t)
	if _, err := store.Copy(ctx, mid, back, false); err != nil {
		t.Fatal(err)
	}
	if _, err := back.RevokeAPIToken(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.CreateAPIToken(ctx, slum.RoleRead, "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.RevokeAPIToken(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	want, got := Dump(t, src), Dump(t, back)
	// The two made and revoked the third token at their own times.
	if trimTimes(got) != trimTimes(want) {
		t.Fatalf("the round trip differs:\n%s", lineDiff(want, got))
	}
}

// trimTimes drops what two fleets made apart differ in: the times of the
// events and tokens made after the copy.
func trimTimes(dump string) string {
	var keep []string
	for _, line := range strings.Split(dump, "\n") {
		if !strings.Contains(line, `"created_at"`) && !strings.Contains(line, `"revoked_at"`) && !strings.Contains(line, `"at"`) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

func copyRefusesAFleet(t *testing.T, openA, openB func(testing.TB) *store.Store) {
	ctx := context.Background()
	src, dst := openA(t), openB(t)
	Populate(t, src)
	mustServer(t, dst, "other", "", 100)
	before := Dump(t, dst)
	_, err := store.Copy(ctx, src, dst, false)
	if !errors.Is(err, store.ErrTargetNotEmpty) || !errors.Is(err, slum.ErrConflict) || !strings.Contains(err.Error(), "1 servers") {
		t.Fatalf("a copy onto a fleet: %v", err)
	}
	if Dump(t, dst) != before {
		t.Fatal("a refused copy changed the target")
	}
	res, err := store.Copy(ctx, src, dst, true)
	if err != nil || !res.Replaced {
		t.Fatalf("a copy replacing a fleet: %+v %v", res, err)
	}
	if want, got := Dump(t, src), Dump(t, dst); got != want {
		t.Fatalf("the replaced fleet differs:\n%s", lineDiff(want, got))
	}
	if _, err := store.Copy(ctx, src, src, true); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("a copy onto itself: %v", err)
	}
}

// lineDiff shows the first lines in which two dumps differ.
func lineDiff(want, got string) string {
	a, b := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("line %d: want %s\n         got  %s", i+1, a[i], b[i])
		}
	}
	return fmt.Sprintf("want %d lines, got %d", len(a), len(b))
}
