package router

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/routes"
)

// hung is an upstream that never answers (a SIGSTOPped server, as far as
// its clients can tell); it tells arrived of each request it holds.
func hung(t *testing.T, arrived chan<- string) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/stream" {
			w.WriteHeader(200)
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		arrived <- r.Method + " " + r.URL.Path
		<-release
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv.URL
}

// When a table drops a server (declared dead) with requests in flight to
// it, they are ended once the grace has passed, not at the response
// timeout: a GET is retried on the copy that serves now, a POST is
// answered 502, a response already under way is cut.
func TestDeadServerEndsItsRequests(t *testing.T) {
	clk := fakeclock.New(time.Now())
	cfg := DefaultConfig()
	cfg.Clock = clk
	logs := &logBuffer{}
	p, err := New(cfg, slog.New(slog.NewJSONHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	srvURL := serveProxy(t, p)

	arrived := make(chan string, 3)
	dead := hung(t, arrived)
	spare := upstream(t, named("spare"))
	alice := route("alice", copyAt("alice", "prod", dead))
	alice.Spares = []routes.Backend{copyAt("alice", "backup", spare)}
	if err := p.Update(routes.New(1, []routes.Route{alice})); err != nil {
		t.Fatal(err)
	}

	type result struct {
		what   string
		status int
		body   string
		err    error
	}
	results := make(chan result, 3)
	send := func(method, path string, body io.Reader) {
		req, _ := http.NewRequest(method, srvURL+path, body)
		req.Host = "alice.example.com"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			results <- result{what: method + " " + path, err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		results <- result{method + " " + path, resp.StatusCode, string(b), err}
	}
	go send("GET", "/get", nil)
	go send("POST", "/post", strings.NewReader("work"))
	go send("GET", "/stream", nil)
	for range 3 {
		within(t, arrived, "a request at the hung server")
	}

	// The controller declares the server dead: its copy leaves the table,
	// the spare serves.
	backup := route("alice", copyAt("alice", "backup", spare))
	if err := p.Update(routes.New(2, []routes.Route{backup})); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-results:
		t.Fatalf("%s answered before the grace passed: %+v", r.what, r)
	case <-time.After(50 * time.Millisecond):
	}
	clk.Advance(cfg.RetireGrace)
	got := map[string]result{}
	for range 3 {
		r := within(t, results, "an answer once the grace passed")
		got[r.what] = r
	}
	if r := got["GET /get"]; r.status != 200 || !strings.HasPrefix(r.body, "spare ") {
		t.Errorf("GET in flight: %+v, want it retried on the spare", r)
	}
	if r := got["POST /post"]; r.status != 502 || !strings.Contains(r.body, "declared dead") {
		t.Errorf("POST in flight: %+v, want 502", r)
	}
	if r := got["GET /stream"]; r.err == nil {
		t.Errorf("a response under way: %+v, want it cut (an error reading its body)", r)
	}
	if v := metricValue(t, p.Metrics(), "slum_router_upstream_errors_total", "kind", "server_gone"); v != 3 {
		t.Errorf("server_gone errors: %v, want 3", v)
	}
	if v := metricValue(t, p.Metrics(), "slum_router_dead_server_aborts_total"); v != 3 {
		t.Errorf("dead server aborts: %v, want 3", v)
	}
}
