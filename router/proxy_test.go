package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slum-fleet/slum/routes"
)

func TestRoutesByHostAndRewritesHost(t *testing.T) {
	alice := upstream(t, named("alice-backend"))
	bob := upstream(t, named("bob-backend"))
	f := newFixture(t, DefaultConfig(),
		route("alice", copyAt("alice", "prod", alice)),
		route("bob", copyAt("bob", "prod", bob)))

	for _, c := range []struct{ host, want string }{
		{"alice.example.com", "alice-backend alice--prod.api.fleet.test /p/x?q=1&r=%20"},
		{"ALICE.example.com:8443", "alice-backend alice--prod.api.fleet.test /p/x?q=1&r=%20"},
		{"bob.example.com", "bob-backend bob--prod.api.fleet.test /p/x?q=1&r=%20"},
	} {
		resp := f.do("GET", c.host, "/p/x?q=1&r=%20", nil)
		if got := text(t, resp); resp.StatusCode != 200 || got != c.want {
			t.Errorf("%s: %d %q, want 200 %q", c.host, resp.StatusCode, got, c.want)
		}
	}
	wantHandoffs(t, f.proxy, 0) // plain GETs stay on the fast path
}

func TestForwardedHeadersAndHopByHop(t *testing.T) {
	seen := make(chan http.Header, 1)
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "upstream-only")
		w.Header().Set("X-Kept", "yes")
		io.WriteString(w, "ok")
	})
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", up)))
	resp := f.do("GET", "alice.example.com", "/", nil,
		"X-Forwarded-For", "203.0.113.9",
		"X-Forwarded-Host", "spoofed.example",
		"X-Forwarded-Proto", "https",
		"Connection", "X-Secret",
		"X-Secret", "client-only",
		"Keep-Alive", "timeout=5",
		"Proxy-Authorization", "Basic c2VjcmV0",
		"X-Custom", "a", "X-Custom", "b")
	if got := text(t, resp); got != "ok" {
		t.Fatalf("body %q", got)
	}
	h := within(t, seen, "the backend's request")
	for k, want := range map[string]string{
		"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
		"X-Forwarded-Host":  "alice.example.com",
		"X-Forwarded-Proto": "http",
	} {
		if got := strings.Join(h[k], "|"); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := strings.Join(h["X-Custom"], "|"); got != "a|b" {
		t.Errorf("X-Custom = %q, want both values in order", got)
	}
	for _, k := range []string{"X-Secret", "Keep-Alive", "Proxy-Authorization"} {
		if v, ok := h[k]; ok {
			t.Errorf("hop-by-hop %s reached the backend: %q", k, v)
		}
	}
	if id := h.Get("X-Request-Id"); id == "" || resp.Header.Get("X-Request-Id") != id {
		t.Errorf("generated request id: upstream %q, response %q", id, resp.Header.Get("X-Request-Id"))
	}
	if resp.Header.Get("X-Hop") != "" || resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("response: X-Hop %q (must be stripped), X-Kept %q", resp.Header.Get("X-Hop"), resp.Header.Get("X-Kept"))
	}

	// A well-formed request id is passed through; a malformed one replaced.
	f.do("GET", "alice.example.com", "/", nil, "X-Request-Id", "abc-123").Body.Close()
	if got := within(t, seen, "request").Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("X-Request-Id passed as %q, want abc-123", got)
	}
	f.do("GET", "alice.example.com", "/", nil, "X-Request-Id", `bad"id`).Body.Close()
	if got := within(t, seen, "request").Get("X-Request-Id"); got == `bad"id` || got == "" {
		t.Errorf("malformed X-Request-Id forwarded as %q", got)
	}
}

func TestAnswersWithoutBackend(t *testing.T) {
	up := upstream(t, named("up"))
	f := newFixture(t, DefaultConfig(),
		route("alice", copyAt("alice", "prod", up)),
		routes.Route{Tenant: "bob", Domain: "bob.example.com", Reason: "server eu-1 offline"},
		routes.Route{Tenant: "carol", Domain: "carol.example.com"},
	)
	for _, c := range []struct {
		name, method, host string
		status             int
		body, retryAfter   string
	}{
		{"unknown host", "GET", "nobody.example.com", 404, "no tenant is served at this host", ""},
		{"no serving copy", "GET", "bob.example.com", 503, "no copy of tenant bob serves now (server eu-1 offline)", "1"},
		{"no copy, no reason", "POST", "carol.example.com", 503, "(unknown)", "1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := f.do(c.method, c.host, "/", strings.NewReader("x"))
			body := text(t, resp)
			if resp.StatusCode != c.status || !strings.Contains(body, c.body) || resp.Header.Get("Retry-After") != c.retryAfter {
				t.Errorf("%d %q Retry-After %q; want %d, body with %q, Retry-After %q",
					resp.StatusCode, body, resp.Header.Get("Retry-After"), c.status, c.body, c.retryAfter)
			}
		})
	}
	f.logs.waitRecords(t, "request", 3)
	m := f.proxy.Metrics()
	if got := metricValue(t, m, "slum_router_unknown_host_total"); got != 1 {
		t.Errorf("unknown host count %v, want 1", got)
	}
	if got := metricValue(t, m, "slum_router_unavailable_total", "reason", "server eu-1 offline"); got != 1 {
		t.Errorf("503s for the reason: %v, want 1", got)
	}
	if got := metricValue(t, m, "slum_router_requests_total", "tenant", "bob", "class", "5xx"); got != 1 {
		t.Errorf("bob's 5xx count %v, want 1", got)
	}
}

func TestConnectMethodRefused(t *testing.T) {
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", upstream(t, named("up")))))
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "CONNECT alice.example.com:443 HTTP/1.1\r\nHost: alice.example.com:443\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("CONNECT answered %d, want 405", resp.StatusCode)
	}
}

func TestRetriesRefusedConnectionOnNextCopy(t *testing.T) {
	var secondHits, spareHits atomic.Int32
	second := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		secondHits.Add(1)
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, "second "+r.Host+" "+string(body))
	})
	spare := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		spareHits.Add(1)
		io.WriteString(w, "spare "+r.Host)
	})
	dead := refusedURL(t)
	f := newFixture(t, DefaultConfig(),
		route("alice", copyAt("alice", "prod", dead), copyAt("alice", "backup", second)),
		routes.Route{Tenant: "bob", Domain: "bob.example.com",
			Backends: []routes.Backend{copyAt("bob", "prod", dead)}, Spares: []routes.Backend{copyAt("bob", "warm", spare)}},
		route("carol", copyAt("carol", "prod", dead)),
	)
	for _, c := range []struct {
		name, method, host string
		body               io.Reader
		status             int
		want               string
	}{
		{"GET to the next copy", "GET", "alice.example.com", nil, 200, "second alice--backup.api.fleet.test "},
		{"HEAD to the next copy", "HEAD", "alice.example.com", nil, 200, ""},
		{"OPTIONS to the next copy", "OPTIONS", "alice.example.com", nil, 200, "second alice--backup.api.fleet.test "},
		{"POST whose body was not sent yet", "POST", "alice.example.com", strings.NewReader("payload"), 200, "second alice--backup.api.fleet.test payload"},
		{"GET to the warm spare", "GET", "bob.example.com", nil, 200, "spare bob--warm.api.fleet.test"},
		{"nowhere else to go", "GET", "carol.example.com", nil, 502, "could not be reached"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := f.do(c.method, c.host, "/", c.body)
			if got := text(t, resp); resp.StatusCode != c.status || !strings.Contains(got, c.want) {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, got, c.status, c.want)
			}
		})
	}
	if secondHits.Load() != 4 || spareHits.Load() != 1 {
		t.Errorf("hits: second copy %d (want 4), spare %d (want 1)", secondHits.Load(), spareHits.Load())
	}
	recs := f.logs.waitRecords(t, "request", 6)
	retried := 0
	for _, r := range recs {
		if r["retried"] == true {
			retried++
		}
	}
	if retried != 5 {
		t.Errorf("%d access log records say retried, want 5", retried)
	}
	if got := metricValue(t, f.proxy.Metrics(), "slum_router_retries_total"); got != 5 {
		t.Errorf("retries metric %v, want 5", got)
	}
}

// dropAfterBody is a raw upstream that reads a whole request, body
// included, then closes the connection without answering.
func dropAfterBody(t *testing.T, got chan<- string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err == nil {
				b, _ := io.ReadAll(req.Body)
				got <- string(b)
			}
			c.Close()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestNeverRetriesPostWhoseBodyWasSent(t *testing.T) {
	got := make(chan string, 4)
	var otherHits atomic.Int32
	other := upstream(t, func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1) })
	f := newFixture(t, DefaultConfig(),
		route("alice", copyAt("alice", "prod", dropAfterBody(t, got)), copyAt("alice", "backup", other)))

	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader("charge the card once")
		if chunked {
			body = io.MultiReader(strings.NewReader("charge the card "), strings.NewReader("once"))
		}
		resp := f.do("POST", "alice.example.com", "/pay", body)
		text(t, resp)
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("chunked=%v: status %d, want 502", chunked, resp.StatusCode)
		}
		if b := within(t, got, "the body at the first copy"); b != "charge the card once" {
			t.Errorf("first copy got body %q", b)
		}
	}
	if n := otherHits.Load(); n != 0 {
		t.Fatalf("a POST whose body was sent was retried: the other copy got %d requests", n)
	}
	if got := metricValue(t, f.proxy.Metrics(), "slum_router_retries_total"); got != 0 {
		t.Errorf("retries metric %v, want 0", got)
	}
}

func TestRetriesGetWhenCopyDiesWithRequestInFlight(t *testing.T) {
	got := make(chan string, 4)
	var otherHits atomic.Int32
	other := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		io.WriteString(w, "other")
	})
	// The first copy reads the request and breaks off without a byte of
	// answer, as a server killed mid-request does: a GET goes on to the
	// next copy on a fresh connection.
	f := newFixture(t, DefaultConfig(),
		route("alice", copyAt("alice", "prod", dropAfterBody(t, got)), copyAt("alice", "backup", other)))
	resp := f.do("GET", "alice.example.com", "/", nil)
	if body := text(t, resp); resp.StatusCode != 200 || body != "other" {
		t.Fatalf("GET: %d %q, want 200 from the other copy", resp.StatusCode, body)
	}
	within(t, got, "the GET at the first copy")
	if n := otherHits.Load(); n != 1 {
		t.Errorf("other copy got %d requests, want 1", n)
	}
	if got := metricValue(t, f.proxy.Metrics(), "slum_router_retries_total"); got != 1 {
		t.Errorf("retries metric %v, want 1", got)
	}
}

// closesAfterEachResponse is a raw upstream that answers one request per
// connection with keep-alive, then closes the connection anyway: every
// pooled connection to it is stale.
func closesAfterEachResponse(t *testing.T, conns *atomic.Int32, bodies chan<- string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err == nil {
				b, _ := io.ReadAll(req.Body)
				if bodies != nil {
					bodies <- string(b)
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}
			c.Close()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestStaleKeptAliveConnection(t *testing.T) {
	var conns atomic.Int32
	bodies := make(chan string, 8)
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", closesAfterEachResponse(t, &conns, bodies))))
	// The first GET leaves a connection in the pool that the server has
	// closed; the second finds it dead and, being replayable, goes again
	// on a new connection.
	for i := range 2 {
		resp := f.do("GET", "alice.example.com", "/", nil)
		if got := text(t, resp); resp.StatusCode != 200 || got != "ok" {
			t.Fatalf("GET %d: %d %q", i, resp.StatusCode, got)
		}
		within(t, bodies, "request")
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d upstream connections, want 2", n)
	}
}

// answersOnceThenDrops is a raw upstream that answers the first request
// on a connection (keep-alive) and drops the connection after reading the
// second, body included.
func answersOnceThenDrops(t *testing.T, conns *atomic.Int32, bodies chan<- string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					b, _ := io.ReadAll(req.Body)
					bodies <- string(b)
					if i > 0 {
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestPostOnKeptAliveConnectionIsNotReplayed(t *testing.T) {
	var conns atomic.Int32
	bodies := make(chan string, 8)
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", answersOnceThenDrops(t, &conns, bodies))))
	if resp := f.do("GET", "alice.example.com", "/", nil); text(t, resp) != "ok" {
		t.Fatal("first request failed")
	}
	within(t, bodies, "the GET")
	// The POST goes over the kept-alive connection; the server reads it
	// and drops the connection. It may have acted: no second attempt.
	resp := f.do("POST", "alice.example.com", "/", strings.NewReader("once"))
	text(t, resp)
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("POST: %d, want 502", resp.StatusCode)
	}
	if b := within(t, bodies, "the POST"); b != "once" {
		t.Errorf("server got %q", b)
	}
	select {
	case b := <-bodies:
		t.Errorf("the POST was sent again (%q)", b)
	default:
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d upstream connections, want 1", n)
	}
}

func TestTimeouts(t *testing.T) {
	slow := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			<-r.Context().Done() // until the proxy gives up and closes the connection
			return
		}
		// Longer than the header timeout, well within the cold-start
		// allowance: a real delay, not synchronisation.
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "woke up")
	})
	cfg := DefaultConfig()
	cfg.ResponseHeaderTimeout = 100 * time.Millisecond
	cfg.ColdStartAllowance = 10 * time.Second
	onDemand := copyAt("od", "prod", slow)
	onDemand.OnDemand = true
	f := newFixture(t, cfg, route("alice", copyAt("alice", "prod", slow)), route("od", onDemand))

	resp := f.do("GET", "alice.example.com", "/hang", nil)
	if body := text(t, resp); resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("hanging upstream: %d %q, want 504", resp.StatusCode, body)
	}
	resp = f.do("GET", "alice.example.com", "/slow", nil)
	text(t, resp)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("slow upstream: %d, want 504", resp.StatusCode)
	}
	resp = f.do("GET", "od.example.com", "/slow", nil)
	if body := text(t, resp); resp.StatusCode != 200 || body != "woke up" {
		t.Errorf("on-demand upstream within the cold-start allowance: %d %q", resp.StatusCode, body)
	}
	if got := metricValue(t, f.proxy.Metrics(), "slum_router_upstream_errors_total", "kind", "timeout"); got != 2 {
		t.Errorf("timeouts counted %v, want 2", got)
	}
}

func TestClientGoneAbortsUpstream(t *testing.T) {
	arrived := make(chan struct{})
	upstreamGone := make(chan struct{})
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done() // the proxy closed the upstream connection
		close(upstreamGone)
	})
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", up)))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", f.url+"/", nil)
	req.Host = "alice.example.com"
	errc := make(chan error, 1)
	go func() {
		resp, err := f.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	within(t, arrived, "the request at the upstream")
	cancel()
	if err := within(t, errc, "the client's error"); !errors.Is(err, context.Canceled) {
		t.Errorf("client: %v", err)
	}
	within(t, upstreamGone, "the upstream connection to close")
	recs := f.logs.waitRecords(t, "request", 1)
	if recs[0]["status"] != float64(499) {
		t.Errorf("logged status %v, want 499", recs[0]["status"])
	}
}

func TestUpstreamBreaksOffMidBody(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "only ten..")
		w.(http.Flusher).Flush()
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close()
	})
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", up)))
	req, _ := http.NewRequest("GET", f.url+"/", nil)
	req.Host = "alice.example.com"
	// The client's connection is cut: before the headers (they were still
	// buffered) or after; never a clean end.
	resp, err := f.client.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if b, err := io.ReadAll(resp.Body); err == nil {
		t.Fatalf("a truncated response read as complete: %q", b)
	}
}

func TestBodyLimit(t *testing.T) {
	var hits atomic.Int32
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.Copy(io.Discard, r.Body)
	})
	cfg := DefaultConfig()
	cfg.MaxBodyBytes = 1000
	f := newFixture(t, cfg, route("alice", copyAt("alice", "prod", up)))

	resp := f.do("POST", "alice.example.com", "/", strings.NewReader(strings.Repeat("x", 1001)))
	text(t, resp)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || hits.Load() != 0 {
		t.Errorf("declared length over the limit: %d with %d upstream hits, want 413 and none", resp.StatusCode, hits.Load())
	}
	resp = f.do("POST", "alice.example.com", "/", io.MultiReader(strings.NewReader(strings.Repeat("x", 600)), strings.NewReader(strings.Repeat("y", 600))))
	text(t, resp)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over the limit: %d, want 413", resp.StatusCode)
	}
	resp = f.do("POST", "alice.example.com", "/", strings.NewReader(strings.Repeat("x", 1000)))
	text(t, resp)
	if resp.StatusCode != 200 {
		t.Errorf("body at the limit: %d, want 200", resp.StatusCode)
	}
}

func TestAccessLogAndMetrics(t *testing.T) {
	up := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "hello")
	})
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", up)))
	text(t, f.do("GET", "alice.example.com", "/a?token=secret", nil, "X-Request-Id", "req-1"))
	text(t, f.do("GET", "alice.example.com", "/missing", nil))
	recs := f.logs.waitRecords(t, "request", 2)
	r := recs[0]
	for k, want := range map[string]any{
		"id": "req-1", "tenant": "alice", "copy": "alice:prod", "server": "s-prod", "status": float64(200),
		"method": "GET", "host": "alice.example.com", "path": "/a", "bytes": float64(5),
	} {
		if r[k] != want {
			t.Errorf("log %s = %v, want %v", k, r[k], want)
		}
	}
	if _, ok := r["duration"]; !ok || r["upstream"] == nil {
		t.Errorf("log lacks duration or upstream: %v", r)
	}
	if strings.Contains(f.logs.buf.String(), "secret") {
		t.Error("the query string (which may carry tokens) was logged")
	}
	m := f.proxy.Metrics()
	if a, b := metricValue(t, m, "slum_router_requests_total", "tenant", "alice", "class", "2xx"),
		metricValue(t, m, "slum_router_requests_total", "tenant", "alice", "class", "4xx"); a != 1 || b != 1 {
		t.Errorf("alice's requests: 2xx %v, 4xx %v; want 1 and 1", a, b)
	}
	if n := metricValue(t, m, "slum_router_upstream_duration_seconds", "server", "s-prod"); n != 2 {
		t.Errorf("upstream latency samples %v, want 2", n)
	}
	if n := metricValue(t, m, "slum_router_in_flight_requests"); n != 0 {
		t.Errorf("in flight after all finished: %v", n)
	}
}
