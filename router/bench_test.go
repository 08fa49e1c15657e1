package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/slum-fleet/slum/routes"
)

// nopWriter is a ResponseWriter that keeps nothing, so the benchmark
// counts the proxy's own work and allocations.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkProxyGET is one small GET through the proxy to a loopback
// backend over a kept-alive connection (the client side is not included).
func BenchmarkProxyGET(b *testing.B) {
	body := []byte("hello from the backend\n")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	}))
	defer up.Close()
	p, err := New(DefaultConfig(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	rt := route("alice", copyAt("alice", "prod", up.URL))
	if err := p.Set(routes.New(1, []routes.Route{rt})); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "http://alice.example.com/some/path?x=1", nil)
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	w := &nopWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		p.ServeHTTP(w, req)
	}
}

// BenchmarkSet10k installs a table of 10,000 tenants on 100 servers, as
// the controller does after every change (a changed copy each time).
func BenchmarkSet10k(b *testing.B) {
	p, err := New(DefaultConfig(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	build := func(rev int64) *routes.Table {
		rs := make([]routes.Route, 10000)
		for i := range rs {
			tenant := fmt.Sprintf("t%05d", i)
			rs[i] = route(tenant, routes.Backend{Instance: tenant + ":prod", Server: fmt.Sprintf("s%03d", (i+int(rev))%100),
				URL: fmt.Sprintf("http://10.77.0.%d:8080", (i+int(rev))%100+1), Host: tenant + "--prod.api.fleet.test"})
		}
		return routes.New(rev, rs)
	}
	tables := []*routes.Table{build(1), build(2)}
	b.ReportAllocs()
	rev := int64(0)
	for b.Loop() {
		rev++
		if err := p.Set(routes.New(rev, tables[rev%2].Routes())); err != nil {
			b.Fatal(err)
		}
	}
}
