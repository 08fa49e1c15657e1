package router

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slum-fleet/slum/routes"
)

func TestSetTakesEffectForTheNextRequest(t *testing.T) {
	a := upstream(t, named("A"))
	b := upstream(t, named("B"))
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", a)))
	get := func() string {
		resp := f.do("GET", "alice.example.com", "/", nil)
		return strings.Fields(text(t, resp))[0]
	}
	if got := get(); got != "A" {
		t.Fatalf("before the move: %s", got)
	}
	// A move: the new copy serves from the next request on.
	if err := f.proxy.Set(routes.New(2, []routes.Route{route("alice", copyAt("alice", "new", b))})); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "B" {
		t.Fatalf("after the move: %s", got)
	}
	// Fenced: nothing serves; 503, never the old copy.
	if err := f.proxy.Set(routes.New(3, []routes.Route{{Tenant: "alice", Domain: "alice.example.com", Reason: "fenced"}})); err != nil {
		t.Fatal(err)
	}
	if resp := f.do("GET", "alice.example.com", "/", nil); resp.StatusCode != 503 {
		t.Fatalf("fenced tenant: %d %q", resp.StatusCode, text(t, resp))
	}
	if f.proxy.Table().Revision() != 3 {
		t.Errorf("revision in use %d", f.proxy.Table().Revision())
	}
}

func TestSetRefusesBadTablesAndChangesNothing(t *testing.T) {
	a := upstream(t, named("A"))
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", a)))
	if err := f.proxy.Set(routes.New(5, []routes.Route{route("alice", copyAt("alice", "prod", a))})); err != nil {
		t.Fatal(err)
	}
	bad := copyAt("alice", "prod", "ftp://x")
	for _, c := range []struct {
		name  string
		table *routes.Table
		want  error
	}{
		{"older revision", routes.New(4, []routes.Route{route("alice", copyAt("alice", "x", a))}), ErrStaleTable},
		{"bad backend url", routes.New(6, []routes.Route{route("alice", bad)}), ErrInvalidRoute},
		{"bad spare", routes.New(6, []routes.Route{{Tenant: "bob", Domain: "bob.example.com", Spares: []routes.Backend{{URL: a, Host: "bad host"}}}}), ErrInvalidRoute},
	} {
		if err := f.proxy.Set(c.table); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if f.proxy.Table().Revision() != 5 {
		t.Fatalf("a refused table changed the revision in use to %d", f.proxy.Table().Revision())
	}
	if resp := f.do("GET", "alice.example.com", "/", nil); !strings.HasPrefix(text(t, resp), "A ") {
		t.Fatal("a refused table changed the routes")
	}
}

func TestSwapUnderConcurrentLoad(t *testing.T) {
	a := upstream(t, named("A"))
	b := upstream(t, named("B"))
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "a", a)))
	tables := []*routes.Table{
		routes.New(1, []routes.Route{route("alice", copyAt("alice", "a", a))}),
		routes.New(1, []routes.Route{route("alice", copyAt("alice", "b", b))}),
	}
	var wrong, failed atomic.Int32
	var served [2]atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", f.url+"/", nil)
				req.Host = "alice.example.com"
				resp, err := f.client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode != 200:
					if failed.Add(1) < 3 {
						t.Logf("%d %s", resp.StatusCode, body)
					}
				case string(body) == "A alice--a.api.fleet.test /":
					served[0].Add(1)
				case string(body) == "B alice--b.api.fleet.test /":
					served[1].Add(1)
				default:
					wrong.Add(1) // e.g. B's server with A's Host
				}
			}
		}()
	}
	// Swap back and forth until both copies have served a good number
	// of requests, then stop.
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; served[0].Load() < 200 || served[1].Load() < 200; i++ {
		if time.Now().After(deadline) {
			break
		}
		if err := f.proxy.Set(tables[i%2]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // let some requests through on this table
	}
	close(stop)
	wg.Wait()
	if wrong.Load() != 0 || failed.Load() != 0 {
		t.Fatalf("%d mixed-up and %d failed responses during swaps", wrong.Load(), failed.Load())
	}
	if served[0].Load() < 200 || served[1].Load() < 200 {
		t.Fatalf("served A %d, B %d: swaps did not take effect", served[0].Load(), served[1].Load())
	}
	// The last table decides from the next request on.
	f.proxy.Set(tables[1])
	if resp := f.do("GET", "alice.example.com", "/", nil); !strings.HasPrefix(text(t, resp), "B ") {
		t.Fatal("the last table is not the one in use")
	}
}

func TestParseBackend(t *testing.T) {
	for _, c := range []struct {
		url, host, key string
		ok             bool
	}{
		{"http://10.77.0.2:8080", "a--b.api.d", "http://10.77.0.2:8080", true},
		{"http://ten.example.com", "a--b.api.d", "http://ten.example.com:80", true},
		{"https://ten.example.com/", "a--b.api.d", "https://ten.example.com:443", true},
		{"http://[::1]:9", "a--b.api.d:9", "http://[::1]:9", true},
		{"ftp://x", "h", "", false},
		{"http://", "h", "", false},
		{"http://u:p@x", "h", "", false},
		{"http://x/path", "h", "", false},
		{"http://x?q", "h", "", false},
		{"::", "h", "", false},
		{"http://x", "", "", false},
		{"http://x", "a b", "", false},
		{"http://x", "a\r\nX-Evil: 1", "", false},
	} {
		key, _, err := parseBackend(routes.Backend{URL: c.url, Host: c.host})
		if (err == nil) != c.ok || key != c.key {
			t.Errorf("parseBackend(%q, %q) = %q, %v; want %q, ok %v", c.url, c.host, key, err, c.key, c.ok)
		}
	}
}

func FuzzParseBackend(f *testing.F) {
	for _, s := range []string{"http://10.77.0.2:8080", "https://x", "http://[::1]:1", "http://x/", "x", ""} {
		f.Add(s, "a--b.api.example.com")
	}
	f.Fuzz(func(t *testing.T, u, host string) {
		key, pu, err := parseBackend(routes.Backend{URL: u, Host: host})
		if err != nil {
			return
		}
		if !strings.HasPrefix(key, "http://") && !strings.HasPrefix(key, "https://") || pu.Port() == "" {
			t.Fatalf("accepted %q as %q", u, key)
		}
		if strings.ContainsAny(host, " \r\n\t") {
			t.Fatalf("accepted Host %q", host)
		}
	})
}

func FuzzValidRequestID(f *testing.F) {
	for _, s := range []string{"abc-123", `a"b`, "", "x\ny", strings.Repeat("a", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !validRequestID(s) {
			return
		}
		if len(s) == 0 || len(s) > 128 || strings.ContainsAny(s, "\"\\ \r\n\t") {
			t.Fatalf("accepted %q", s)
		}
	})
}

func TestConnectionTokens(t *testing.T) {
	for _, c := range []struct {
		conn, upgrade, want string
	}{
		{"Upgrade", "websocket", "websocket"},
		{"keep-alive, upgrade", "websocket", "websocket"},
		{"keep-alive", "websocket", ""},
		{"Upgrade", "", ""},
		{"", "websocket", ""},
	} {
		h := http.Header{}
		if c.conn != "" {
			h.Set("Connection", c.conn)
		}
		if c.upgrade != "" {
			h.Set("Upgrade", c.upgrade)
		}
		if got := upgradeRequested(h); got != c.want {
			t.Errorf("Connection %q Upgrade %q: %q, want %q", c.conn, c.upgrade, got, c.want)
		}
	}
}

func TestSetClosesConnectionsToDroppedServers(t *testing.T) {
	closed := make(chan struct{}, 4)
	old := httptest.NewUnstartedServer(named("old"))
	old.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	old.Start()
	t.Cleanup(old.Close)
	f := newFixture(t, DefaultConfig(), route("alice", copyAt("alice", "prod", old.URL)))
	text(t, f.do("GET", "alice.example.com", "/", nil)) // leaves an idle connection
	if err := f.proxy.Set(routes.New(2, []routes.Route{route("alice", copyAt("alice", "new", upstream(t, named("new"))))})); err != nil {
		t.Fatal(err)
	}
	within(t, closed, "the idle connection to the dropped server to close")
}
