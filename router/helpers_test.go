package router

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/routes"
)

// fixture is a proxy served on a loopback listener, with a client and a
// captured access log.
type fixture struct {
	t      *testing.T
	proxy  *Proxy
	url    string
	client *http.Client
	logs   *logBuffer
}

func newFixture(t *testing.T, cfg Config, rs ...routes.Route) *fixture {
	t.Helper()
	logs := &logBuffer{}
	p, err := New(cfg, slog.New(slog.NewJSONHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Set(routes.New(1, rs)); err != nil {
		t.Fatal(err)
	}
	url := serveProxy(t, p)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &fixture{t: t, proxy: p, url: url, client: &http.Client{Transport: tr, Timeout: 20 * time.Second}, logs: logs}
}

// fastPath says which server the tests run the proxy on: TestMain runs
// every test twice, on net/http's server and on the fast path.
var fastPath bool

func TestMain(m *testing.M) {
	code := m.Run()
	// A fuzz target fuzzes a parser, not a server: once is enough (a second
	// session only doubles the chance of Go 1.26's fuzzing deadline race,
	// golang/go#75804).
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(code)
	}
	fastPath = true
	if c := m.Run(); c != 0 {
		code = c
	}
	os.Exit(code)
}

// serveProxy serves p on a loopback listener, on the server the run
// tests (fastPath), and returns its URL.
func serveProxy(t *testing.T, p *Proxy) string {
	t.Helper()
	if !fastPath {
		srv := httptest.NewServer(p)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	cfg := DefaultServerConfig()
	cfg.FastPath = true
	return "http://" + startServer(t, cfg, p).addr
}

// do sends a request for host through the proxy.
func (f *fixture) do(method, host, path string, body io.Reader, hdr ...string) *http.Response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	return resp
}

// text reads and closes a response body.
func text(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

// upstream starts a test upstream; its URL is the tenement base URL.
func upstream(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// named answers with its name and what it saw.
func named(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", name)
		io.WriteString(w, name+" "+r.Host+" "+r.URL.RequestURI())
	}
}

// refusedURL is a loopback address nothing listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func route(tenant string, bs ...routes.Backend) routes.Route {
	return routes.Route{Tenant: tenant, Domain: tenant + ".example.com", Backends: bs}
}

func copyAt(tenant, instance, url string) routes.Backend {
	return routes.Backend{Instance: slum.KeyOf(tenant, instance), Server: "s-" + instance, URL: url,
		Host: tenant + "--" + instance + ".api.fleet.test"}
}

// logBuffer collects JSON log lines; safe for concurrent writers.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{} // a token after every write
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written == nil {
		b.written = make(chan struct{}, 1)
	}
	select {
	case b.written <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *logBuffer) writes() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written == nil {
		b.written = make(chan struct{}, 1)
	}
	return b.written
}

// records returns the log lines with the given message.
func (b *logBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// waitRecords waits until at least n records with msg were logged: the
// access log is written after the response, so a client may be faster.
func (b *logBuffer) waitRecords(t *testing.T, msg string, n int) []map[string]any {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		rs := b.records(t, msg)
		if len(rs) >= n {
			return rs
		}
		select {
		case <-b.writes():
		case <-timeout:
			t.Fatalf("%d %q log records, want %d", len(rs), msg, n)
		}
	}
}

// metricValue finds a counter's or gauge's value by name and labels.
func metricValue(t *testing.T, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, mt := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range mt.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch {
			case mt.Counter != nil:
				return mt.Counter.GetValue()
			case mt.Gauge != nil:
				return mt.Gauge.GetValue()
			case mt.Histogram != nil:
				return float64(mt.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

// within fails the test when ch does not deliver in time.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func ctxWithTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantHandoffs checks, on the fast path, how many connections went to
// net/http's server.
func wantHandoffs(t *testing.T, p *Proxy, n float64) {
	t.Helper()
	if got := metricValue(t, p.Metrics(), "slum_router_fast_path_handoffs_total"); fastPath && got != n {
		t.Errorf("%v connections handed to net/http, want %v", got, n)
	}
}
