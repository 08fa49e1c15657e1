package router

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
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
			rs[i] = route(tenant, routes.Backend{Instance: slum.KeyOf(tenant, "prod"), Server: fmt.Sprintf("s%03d", (i+int(rev))%100),
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

// cannedConn is an upstream connection in memory: every request written
// to it (one Flush each) is answered with resp. It lets a benchmark
// measure the proxy's own work per request, without the network.
type cannedConn struct {
	resp    []byte
	pending []byte
}

func (c *cannedConn) Read(b []byte) (int, error) {
	if len(c.pending) == 0 {
		return 0, io.EOF
	}
	n := copy(b, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *cannedConn) Write(b []byte) (int, error) {
	c.pending = append(c.pending, c.resp...)
	return len(b), nil
}

func (c *cannedConn) Close() error { return nil }
func (c *cannedConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *cannedConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
}
func (c *cannedConn) SetDeadline(time.Time) error      { return nil }
func (c *cannedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *cannedConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkProxyHotPath is the proxy's own work for one small GET, as
// net/http's server hands it over (origin-form URI, a browser's headers),
// to an upstream in memory answering like a tenement app: what routing,
// header rewriting, the upstream exchange, metrics and the response
// headers cost, without syscalls.
func BenchmarkProxyHotPath(b *testing.B) {
	resp := "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Mon, 23 Nov 2026 14:50:40 GMT\r\n" +
		"Cache-Control: no-cache\r\nContent-Length: 23\r\n\r\nhello from the backend\n"
	p, err := New(DefaultConfig(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	p.dialTCP = func(context.Context, string, string) (net.Conn, error) {
		return &cannedConn{resp: []byte(resp)}, nil
	}
	rt := route("alice", copyAt("alice", "prod", "http://10.77.0.1:8080"))
	if err := p.Set(routes.New(1, []routes.Route{rt})); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "http://alice.example.com/some/path?x=1", nil)
	req.RequestURI = "/some/path?x=1"
	req.RemoteAddr = "192.0.2.7:51234"
	for k, v := range map[string]string{
		"User-Agent":      "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Accept":          "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"Accept-Language": "en-GB,en;q=0.5",
		"Accept-Encoding": "gzip, deflate, br",
		"Cookie":          "session=0123456789abcdef",
	} {
		req.Header.Set(k, v)
	}
	w := &nopWriter{h: http.Header{}}
	p.ServeHTTP(w, req) // dial once: the rest reuse the connection
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		p.ServeHTTP(w, req)
	}
}
