package traffic_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/router"
	"github.com/slum-fleet/slum/routes"
	"github.com/slum-fleet/slum/traffic"
)

// The router's snapshot counts each tenant's requests and 5xx answers
// with their cumulative latency buckets, and each server's upstream
// requests with theirs: a report the history takes.
func TestRouterTrafficSnapshot(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer up.Close()
	p, err := router.New(router.DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Set(routes.New(1, []routes.Route{{Tenant: "alice", Domain: "alice.example.com",
		Backends: []routes.Backend{{Instance: "alice:prod", Server: "s1", URL: up.URL, Host: "alice--prod.api.s1"}}}})); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/", "/", "/fail"} {
		req := httptest.NewRequest("GET", "http://alice.example.com"+path, nil)
		p.ServeHTTP(httptest.NewRecorder(), req)
	}
	r := p.Metrics().Traffic()
	r.Source = "test"
	if err := r.Validate(); err != nil {
		t.Fatalf("the snapshot is no valid report: %v", err)
	}
	if a := r.Tenants["alice"]; a.Requests != 4 || a.Errors != 1 {
		t.Errorf("alice: %+v, want 4 requests, 1 error", a)
	}
	if l := r.Tenants["alice"].Latency; len(l) == 0 || len(l) != len(r.Bounds) || l[len(l)-1] != 4 {
		t.Errorf("alice's latency buckets: %v (bounds %v), want 4 answers counted", l, r.Bounds)
	}
	s := r.Servers["s1"]
	if s.Requests != 4 || len(s.Latency) == 0 || len(s.Latency) != len(r.Bounds) || s.Latency[len(s.Latency)-1] != 4 {
		t.Errorf("s1: %+v (bounds %v)", s, r.Bounds)
	}
}

// Each tenant's p50 and p99 come from the router's latency of its own
// requests: a slow tenant on the same server as a quick one shows slow,
// the quick one quick, in the traffic history the API serves.
func TestRouterTenantLatencyInHistory(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, "slow") {
			time.Sleep(30 * time.Millisecond)
		}
	}))
	defer up.Close()
	p, err := router.New(router.DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	route := func(tenant string) routes.Route {
		return routes.Route{Tenant: tenant, Domain: tenant + ".example.com",
			Backends: []routes.Backend{{Instance: slum.InstanceKey(tenant + ":prod"), Server: "s1", URL: up.URL, Host: tenant + "--prod.api.s1"}}}
	}
	if err := p.Set(routes.New(1, []routes.Route{route("quick"), route("slow"), route("idle")})); err != nil {
		t.Fatal(err)
	}
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	h := traffic.New(traffic.Config{Clock: clk})
	record := func() {
		r := p.Metrics().Traffic()
		r.Source = "r"
		if err := h.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	record()
	for range 10 {
		for _, tn := range []string{"quick", "slow"} {
			p.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "http://"+tn+".example.com/", nil))
		}
	}
	record()
	clk.Advance(10 * time.Second) // the slot is over: its percentiles are written
	record()
	w := h.Window(traffic.Query{Last: time.Minute})
	quick, slow := w.Tenants["quick"], w.Tenants["slow"]
	if quick == nil || slow == nil {
		t.Fatalf("tenants in the window: %v", w.Tenants)
	}
	t.Logf("quick p50 %v ms p99 %v ms; slow p50 %v ms p99 %v ms", quick.Now.P50, quick.Now.P99, slow.Now.P50, slow.Now.P99)
	if slow.Now.P50 < 30 || slow.Now.P99 < 30 {
		t.Errorf("slow: p50 %v ms, p99 %v ms, want at least its 30 ms", slow.Now.P50, slow.Now.P99)
	}
	if quick.Now.P99 <= 0 || quick.Now.P99 >= 30 {
		t.Errorf("quick: p99 %v ms, want measured and under the slow one's 30 ms", quick.Now.P99)
	}
	if idle := w.Tenants["idle"]; idle != nil && idle.Now.P99 != 0 {
		t.Errorf("idle, never asked: p99 %v ms", idle.Now.P99)
	}
}
