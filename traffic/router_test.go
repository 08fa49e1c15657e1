package traffic_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/slum-fleet/slum/router"
	"github.com/slum-fleet/slum/routes"
)

// The router's snapshot counts each tenant's requests and 5xx answers,
// and each server's upstream requests with cumulative latency buckets:
// a report the history takes.
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
	s := r.Servers["s1"]
	if s.Requests != 4 || len(s.Latency) == 0 || len(s.Latency) != len(r.Bounds) || s.Latency[len(s.Latency)-1] != 4 {
		t.Errorf("s1: %+v (bounds %v)", s, r.Bounds)
	}
}
