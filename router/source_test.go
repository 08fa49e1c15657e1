package router

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/routes"
)

// fakeReader is a fleet database that can be made to fail.
type fakeReader struct {
	mu    sync.Mutex
	fail  error
	rev   int64
	table routes.Source
	reads chan struct{}
}

func (f *fakeReader) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case f.reads <- struct{}{}:
	default:
	}
	return f.fail
}

func (f *fakeReader) set(fail error, rev int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail, f.rev = fail, rev
}

func (f *fakeReader) Revision(context.Context) (int64, error) {
	if err := f.err(); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rev, nil
}
func (f *fakeReader) StatusRevision(context.Context) (int64, error) { return 1, f.err() }
func (f *fakeReader) Snapshot(context.Context) (*slum.Snapshot, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &slum.Snapshot{Revision: f.rev, Servers: f.table.Servers, Tenants: f.table.Tenants, Instances: f.table.Instances}, nil
}
func (f *fakeReader) ListServerStatus(context.Context) ([]slum.ServerStatus, error) {
	return nil, f.err()
}
func (f *fakeReader) ListTenantStatus(context.Context) ([]slum.TenantStatus, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	var out []slum.TenantStatus
	for id, st := range f.table.Serving {
		st.TenantID = id
		out = append(out, st)
	}
	return out, nil
}

// oneTenant is a fleet of one tenant "a" served by copy "web" at url.
func oneTenant(url string) routes.Source {
	return routes.Source{
		Servers:   []slum.Server{{ID: "s1", URL: url, Domain: "s1.test"}},
		Tenants:   []slum.Tenant{{ID: "a", Domain: "a.example.com"}},
		Instances: []slum.Instance{{TenantID: "a", ID: "web", Process: "api", ServerID: "s1"}},
		Serving:   map[string]slum.TenantStatus{"a": {Serving: []slum.CopyRef{{Instance: "web", Server: "s1"}}}},
	}
}

// A router following a database that fails keeps answering with its last
// table, says so in /healthz, its metrics and its log (once a minute), and
// follows again by itself once the database answers.
func TestRoutingOutlivesItsSource(t *testing.T) {
	clk := fakeclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	logs := &logBuffer{}
	cfg := DefaultConfig()
	cfg.Clock = clk
	p, err := New(cfg, slog.New(slog.NewJSONHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	p.SetSource("fleet.db")
	srvURL := serveProxy(t, p)
	up := upstream(t, named("web"))
	db := &fakeReader{rev: 1, table: oneTenant(up), reads: make(chan struct{}, 1)}

	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() { defer close(followed); routes.FollowInto(ctx, db, time.Millisecond, p) }()
	t.Cleanup(func() { cancel(); <-followed })
	get := func() (int, string) {
		req, _ := http.NewRequest("GET", srvURL+"/x", nil)
		req.Host = "a.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, text(t, resp)
	}
	waitFor(t, "the first table", func() bool { return p.Table().Revision() == 1 && p.Table().Len() == 1 })
	if code, body := get(); code != 200 || !strings.HasPrefix(body, "web ") {
		t.Fatalf("before the failure: %d %q", code, body)
	}

	db.set(errors.New("open postgres://slum:hunter2@db/fleet: disk I/O error, token=slum_abcdef"), 1)
	waitFor(t, "the source to be seen down", func() bool { return !p.Health().SourceUp })
	clk.Advance(90 * time.Second)
	for i := 0; i < 3; i++ {
		if code, body := get(); code != 200 || !strings.HasPrefix(body, "web ") {
			t.Fatalf("with the source down: %d %q", code, body)
		}
	}
	h := p.Health()
	if h.Revision != 1 || h.Routes != 1 || h.TableAge < 90*time.Second {
		t.Errorf("health while down: %+v", h)
	}
	if strings.Contains(h.LastError, "hunter2") || strings.Contains(h.LastError, "slum_abcdef") || !strings.Contains(h.LastError, "disk I/O error") {
		t.Errorf("last error %q: want the cause without secrets", h.LastError)
	}
	hz := healthz(t, p)
	if !strings.HasPrefix(hz, "ok: routing with the last good table") || !strings.Contains(hz, "DOWN since 2026-01-02T03:04:05Z") ||
		!strings.Contains(hz, "revision 1, 1 routes") || strings.Contains(hz, "hunter2") {
		t.Errorf("/healthz while down:\n%s", hz)
	}
	if v := metricValue(t, p.Metrics(), "slum_router_source_up"); v != 0 {
		t.Errorf("slum_router_source_up = %v while down", v)
	}
	if v := metricValue(t, p.Metrics(), "slum_router_table_age_seconds"); v < 90 {
		t.Errorf("slum_router_table_age_seconds = %v, want ≥ 90", v)
	}
	p.reportSource(clk.Now())
	p.reportSource(clk.Now().Add(30 * time.Second)) // within the minute: no line
	if n := len(logs.records(t, "route source is down: routing with the last good table")); n != 1 {
		t.Errorf("%d 'down' lines, want 1", n)
	}
	if n := len(logs.records(t, "route source still down: routing with the last good table")); n != 1 {
		t.Errorf("%d 'still down' lines after 90 s, want 1", n)
	}

	db.set(nil, 2)
	waitFor(t, "the source to be followed again", func() bool { return p.Health().SourceUp && p.Table().Revision() == 2 })
	if v := metricValue(t, p.Metrics(), "slum_router_source_up"); v != 1 {
		t.Errorf("slum_router_source_up = %v once back", v)
	}
	if h := p.Health(); h.TableAge > time.Second || h.LastError != "" {
		t.Errorf("health once back: %+v", h)
	}
	if !strings.HasPrefix(healthz(t, p), "ok\nsource: fleet.db up since") {
		t.Errorf("/healthz once back:\n%s", healthz(t, p))
	}
	logs.waitRecords(t, "route source is back: following it again", 1)
}

func healthz(t *testing.T, p *Proxy) string {
	t.Helper()
	rec := httptest.NewRecorder()
	p.HealthHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 200 {
		t.Errorf("/healthz: %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// waitFor polls cond: the follower runs on its own goroutine, on the
// real clock, every millisecond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestScrub(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"dial postgres://u:pw@h:5432/db: refused", "dial postgres://REDACTED@h:5432/db: refused"},
		{"fleet API https://api.test: 401 for token slum_r_0123abc", "fleet API https://api.test: 401 for token REDACTED"},
		{"password=s3cret host=x", "password=REDACTED host=x"},
		{"Authorization: Bearer abc.def", "Authorization: Bearer REDACTED"},
		{"disk I/O error", "disk I/O error"},
	} {
		if got := scrub(tc.in); got != tc.want {
			t.Errorf("scrub(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
