package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/internal/fleettest"
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
