package main

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/spf13/cobra"

	"github.com/slum-fleet/slum/dataguard"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/internal/fleettest"
	"github.com/slum-fleet/slum/reconcile"
	"github.com/slum-fleet/slum/router"
	"github.com/slum-fleet/slum/sqlite"
)

// A restarted controller's router routes as the database last said before
// the controller's first plan.
func TestRouterStartsWithTheRoutesInTheDatabase(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	file, err := desired.Parse("fleet.yaml", []byte(`version: 1
servers:
  - {id: s1, url: "http://127.0.0.1:9", domain: s1.fleet.test, capacity_mb: 1024, token_env: TOK}
tenants:
  - id: alice
    domain: alice.example.com
    instances: [{id: prod, process: api, server: s1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := file.ResolveTokens(func(string) (string, bool) { return "tok", true }, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(ctx, fleettest.Source(t, file), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	lease, err := st.AcquireLease(ctx, slum.ControllerLease, "test", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.WriteReport(ctx, lease.Fence(), slum.Report{
		Servers: []slum.ServerStatus{{ServerID: "s1", Health: slum.HealthOnline, HealthSince: now, Listed: true, UpdatedAt: now}},
		Tenants: []slum.TenantStatus{{TenantID: "alice", Serving: []slum.CopyRef{{Instance: "prod", Server: "s1"}}, ChangedAt: now, UpdatedAt: now}},
	}); err != nil {
		t.Fatal(err)
	}
	p, err := router.New(router.DefaultConfig(), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, ok := p.Table().Lookup("alice.example.com"); ok {
		t.Fatal("a new router already routes alice")
	}
	seedRoutes(ctx, st, p, slog.New(slog.DiscardHandler))
	r, ok := p.Table().Lookup("alice.example.com")
	if !ok || len(r.Backends) != 1 || r.Backends[0].Instance != "alice:prod" {
		t.Fatalf("after seeding: %+v %v, want alice served by prod", r, ok)
	}
}

// A stack that stands by (another controller leads) acts on nothing and
// its router follows what the leader writes to the database.
func TestStandbyRouterFollowsTheLeader(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	file, err := desired.Parse("fleet.yaml", []byte(`version: 1
servers:
  - {id: s1, url: "http://127.0.0.1:9", domain: s1.fleet.test, capacity_mb: 1024, token_env: TOK}
  - {id: s2, url: "http://127.0.0.1:9", domain: s2.fleet.test, capacity_mb: 1024, token_env: TOK}
tenants:
  - id: alice
    domain: alice.example.com
    instances: [{id: prod, process: api, server: s1}, {id: backup, process: api, server: s2}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := file.ResolveTokens(func(string) (string, bool) { return "tok", true }, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(ctx, fleettest.Source(t, file), slum.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// The leader: a controller of another host, as far as this one knows.
	lease, err := st.AcquireLease(ctx, slum.ControllerLease, "elsewhere/1/a", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(copy string) {
		t.Helper()
		now := time.Now()
		rep := slum.Report{Tenants: []slum.TenantStatus{{TenantID: "alice", Serving: []slum.CopyRef{{Instance: copy, Server: map[string]string{"prod": "s1", "backup": "s2"}[copy]}},
			ChangedAt: now, UpdatedAt: now}}}
		for _, id := range []string{"s1", "s2"} {
			rep.Servers = append(rep.Servers, slum.ServerStatus{ServerID: id, Health: slum.HealthOnline, HealthSince: now, Listed: true, UpdatedAt: now})
		}
		if err := st.WriteReport(ctx, lease.Fence(), rep); err != nil {
			t.Fatal(err)
		}
	}
	serve("prod")
	var rf routeFlags
	rf.register(&cobra.Command{}, "route-addr", "127.0.0.1:0")
	stk, err := startStack(ctx, st, stackOptions{cfg: reconcile.DefaultConfig(), route: &rf, leaseTTL: 15 * time.Second,
		log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stk.Stop() }()
	routed := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			r, ok := stk.Proxy.Table().Lookup("alice.example.com")
			if ok && len(r.Backends) == 1 && string(r.Backends[0].Instance) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("alice routed to %+v, want %s; elector %+v", r.Backends, want, stk.Elector.Status())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	routed("alice:prod")
	serve("backup")
	routed("alice:backup")
	if es := stk.Elector.Status(); es.Leading || !strings.Contains(es.Reason, "elsewhere/1/a leads") || stk.Controller() != nil {
		t.Fatalf("the stack does not stand by: %+v", es)
	}
}

// The data guard reads the desired state the term's controller holds,
// and nothing of its own before the controller has read it.
func TestGuardSourceIsTheControllersSnapshot(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "fleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.AddTenant(ctx, slum.Tenant{ID: "alice", Domain: "alice.example.com"}); err != nil {
		t.Fatal(err)
	}
	var ctrl atomic.Pointer[reconcile.Controller]
	src := guardSource{Store: st, ctrl: &ctrl}
	notReady := func(what string) {
		t.Helper()
		if snap, err := src.Snapshot(ctx); !errors.Is(err, dataguard.ErrNotReady) || snap != nil {
			t.Errorf("%s: snapshot %+v, %v; want dataguard.ErrNotReady", what, snap, err)
		}
		if _, err := src.Revision(ctx); !errors.Is(err, dataguard.ErrNotReady) {
			t.Errorf("%s: revision: %v; want dataguard.ErrNotReady", what, err)
		}
	}
	notReady("no controller")
	lease, err := st.AcquireLease(ctx, slum.ControllerLease, "test", "", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c := reconcile.New(st, reconcile.HTTPClientFactory(time.Second), reconcile.DefaultConfig(), slog.New(slog.DiscardHandler), reconcile.NewMetrics())
	ctrl.Store(c)
	notReady("a controller that has read nothing")
	if _, err := c.Sync(ctx, lease.Fence(), false); err != nil {
		t.Fatal(err)
	}
	snap, err := src.Snapshot(ctx)
	if err != nil || snap != c.Desired() || len(snap.Tenants) != 1 {
		t.Fatalf("got %p %v, want the controller's snapshot %p", snap, err, c.Desired())
	}
	if rev, err := src.Revision(ctx); err != nil || rev != snap.Revision {
		t.Fatalf("revision %d %v, want %d", rev, err, snap.Revision)
	}
}
