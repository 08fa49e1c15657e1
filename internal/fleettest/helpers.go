package fleettest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/store"
)

func mustServer(t testing.TB, s slum.Fleet, id, region string, capacity int64) {
	t.Helper()
	if _, err := s.AddServer(context.Background(), slum.Server{ID: id, URL: "http://" + id + ".test:8080", Region: region, CapacityMB: capacity, Token: "tok-" + id}); err != nil {
		t.Fatal(err)
	}
}

func mustTenant(t testing.TB, s slum.Fleet, id, region string) {
	t.Helper()
	if _, _, err := s.AddTenant(context.Background(), slum.Tenant{ID: id, Domain: id + ".example.com", Region: region}); err != nil {
		t.Fatal(err)
	}
}

// snapshot is every desired row, to show that a rejected call changed
// nothing.
func snapshot(t testing.TB, s Subject) string {
	t.Helper()
	ctx := context.Background()
	srv, err1 := s.ListServers(ctx)
	ten, err2 := s.ListTenants(ctx)
	ins, err3 := s.ListInstances(ctx)
	rev, err4 := s.Store.Revision(ctx)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal([]any{srv, ten, ins, rev})
	return string(b)
}

const fleetYAML = `version: 1
servers:
  - id: s1
    url: http://10.0.0.1:8080
    region: eu
    capacity_mb: 1000
    token_env: TOK_S1
  - id: s2
    url: http://10.0.0.2:8080
    region: eu
    capacity_mb: 1000
    token_file: s2.token
tenants:
  - id: alice
    domain: alice.example.com
    region: eu
    instances:
      - id: prod
        process: api
        memory_mb: 300
      - id: backup
        process: api
        memory_mb: 300
  - id: bob
    domain: bob.example.com
    instances:
      - {id: prod, process: api, server: s2, mode: on-demand}
`

func parseFleet(t testing.TB, text string) *desired.File {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "s2.token"), []byte("token-two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := desired.Parse("fleet.yaml", []byte(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	env := map[string]string{"TOK_S1": "token-one"}
	if err := f.ResolveTokens(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, dir); err != nil {
		t.Fatalf("tokens: %v", err)
	}
	return f
}

// ledger is the ownership ledger, to show a rejected prune left it alone.
func ledger(t *testing.T, s *store.Store) []slum.Placement {
	t.Helper()
	ps, err := s.ListPlacements(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func keysOf[K ~string, V any](m map[K]*V) string {
	var ks []string
	for k, v := range m {
		s := string(k)
		if v == nil {
			s += "(gone)"
		}
		ks = append(ks, s)
	}
	slices.Sort(ks)
	return strings.Join(ks, " ")
}

// everything is every row a controller writes, besides the desired state.
func everything(t *testing.T, s *store.Store) string {
	t.Helper()
	ctx := context.Background()
	evs, err1 := s.RecentEvents(ctx, 1000)
	ps, err2 := s.ListPlacements(ctx)
	ist, err3 := s.ListInstanceStatus(ctx)
	holds, err4 := s.RecentHolds(ctx, 100)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatal(err)
	}
	return snapshot(t, Subject{Fleet: s, Store: s}) + fmt.Sprint(evs, ps, ist, holds)
}
