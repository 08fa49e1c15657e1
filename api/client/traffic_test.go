package client_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/api"
	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/traffic"
)

// A router token reports its counters; a read token reads them back as
// rates, per tenant or for one; a bad report changes nothing.
func TestTrafficThroughTheAPI(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	a := api.New(st, api.Config{Traffic: traffic.New(traffic.Config{Clock: clk})})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	router, reader := clientAs(t, st, srv.URL, slum.RoleRouter, "edge"), clientAs(t, st, srv.URL, slum.RoleRead, "viewer")
	rep := func(n uint64) traffic.Report {
		return traffic.Report{Source: "edge", Tenants: map[string]traffic.Counts{"alice": {Requests: n, Errors: n / 10}, "bob": {}},
			Servers: map[string]traffic.Counts{}}
	}
	for i, n := range []uint64{0, 500} {
		if i > 0 {
			clk.Advance(5 * time.Second)
		}
		if err := router.RecordTraffic(ctx, rep(n)); err != nil {
			t.Fatal(err)
		}
	}
	bad := rep(1000)
	bad.Tenants["Not An Id"] = traffic.Counts{}
	if err := router.RecordTraffic(ctx, bad); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("a bad report: %v", err)
	}
	clk.Advance(5 * time.Second)
	w, err := reader.Traffic(ctx, traffic.Query{Last: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	al := w.Tenants["alice"]
	if al == nil || al.RPS[len(al.RPS)-1] != 100 || al.ErrorRate[len(al.RPS)-1] != 0.1 || len(w.Tenants) != 2 {
		t.Fatalf("alice's traffic: %+v (of %d tenants)", al, len(w.Tenants))
	}
	one, err := reader.Traffic(ctx, traffic.Query{Tenant: "alice", Since: w.Start})
	if err != nil || len(one.Tenants) != 1 || one.Tenants["alice"].Now.RPS == 0 {
		t.Fatalf("alice alone: %+v %v", one, err)
	}
	if _, err := reader.Traffic(ctx, traffic.Query{Tenant: "Bad Id"}); !errors.Is(err, slum.ErrInvalid) {
		t.Fatalf("a bad tenant id: %v", err)
	}
}
