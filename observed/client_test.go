package observed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// transports are the two ways a Client sends a call: its own kept-alive
// connections (the default for plain HTTP) and net/http.
var transports = []struct {
	name string
	opts []Option
}{
	{"kept", nil},
	{"net/http", []Option{WithHTTPClient(&http.Client{Transport: NewTransport()})}},
}

func TestClientClassifiesFailures(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { testClientClassifiesFailures(t, tr.opts) })
	}
}

func testClientClassifiesFailures(t *testing.T, opts []Option) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		op        string
		class     error
		permanent bool
	}{
		{"5xx is retried", 503, `{"error":"busy"}`, "list", ErrUnavailable, false},
		{"spawn 500 is retried", 500, `{"error":"Failed to start: port in use"}`, "spawn", ErrUnavailable, false},
		{"unknown process is permanent", 500, `{"error":"Unknown process: web"}`, "spawn", ErrUnknownProcess, true},
		{"401 is permanent", 401, ``, "list", ErrUnauthorized, true},
		{"403 is permanent", 403, `{"error":"forbidden"}`, "spawn", ErrUnauthorized, true},
		{"429 waits", 429, ``, "list", ErrRateLimited, false},
		{"400 is permanent", 400, `{"error":"Invalid instance ID format"}`, "stop", ErrBadRequest, true},
		{"malformed list", 200, `[{"id": "api:a--b", `, "list", ErrMalformed, false},
		{"404 list is not tenement", 404, `not found`, "list", ErrMalformed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, err := NewClient(srv.URL, "secret-token", opts...)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			call := func() error {
				switch tc.op {
				case "spawn":
					_, err := c.Spawn(ctx, "api", "a--b")
					return err
				case "stop":
					return c.Stop(ctx, "api", "a--b")
				}
				_, err := c.List(ctx)
				return err
			}
			err = call()
			if !errors.Is(err, tc.class) || IsPermanent(err) != tc.permanent {
				t.Fatalf("%v: class %v permanent %v", err, tc.class, IsPermanent(err))
			}
			if strings.Contains(err.Error(), "secret-token") {
				t.Fatalf("the error shows the token: %v", err)
			}
			if tc.class == ErrRateLimited && RetryAfter(err) != LockoutWait {
				t.Fatalf("RetryAfter = %v", RetryAfter(err))
			}
			// A rejected token and a lock-out are not resent.
			_ = call()
			want := int32(2)
			if tc.class == ErrUnauthorized || tc.class == ErrRateLimited {
				want = 1
			}
			if calls.Load() != want {
				t.Fatalf("%d requests reached the server, want %d", calls.Load(), want)
			}
		})
	}
}

func TestClientTimesOutAndRefusesBadNames(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) { testClientTimesOutAndRefusesBadNames(t, tr.opts) })
	}
}

func testClientTimesOutAndRefusesBadNames(t *testing.T, opts []Option) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	c, _ := NewClient(srv.URL, "t", append(opts, WithTimeout(100*time.Millisecond))...)
	start := time.Now()
	_, err := c.List(context.Background())
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "timed out") || time.Since(start) > 2*time.Second {
		t.Fatalf("hung server: %v after %v", err, time.Since(start))
	}
	for _, bad := range [][2]string{{"api", "../etc"}, {"API", "a"}, {"api", ""}, {"a:b", "c"}, {"api", strings.Repeat("x", 64)}} {
		if err := c.Stop(context.Background(), bad[0], bad[1]); !errors.Is(err, ErrBadRequest) || !IsPermanent(err) {
			t.Errorf("stop %q %q: %v", bad[0], bad[1], err)
		}
	}
	if _, err := NewClient("ftp://x", "t"); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad URL: %v", err)
	}
}

// TestClientKeptCallsAsNetHTTPSendsThem: on kept connections a call
// reaches the server as net/http sent it (the base URL's path, the token,
// the body), and what net/http would refuse or turn into other headers
// still goes through net/http.
func TestClientKeptCallsAsNetHTTPSendsThem(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		user, _, _ := r.BasicAuth()
		fmt.Fprintf(w, `{"instance":%q}`, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type")+" "+r.Header.Get("Authorization")+" "+user+" "+string(b))
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		base, token string
		kept        bool
		want        string
	}{
		{srv.URL, "t0k", true, `POST /api/instances/spawn application/json Bearer t0k  {"process":"api","id":"a--b"}`},
		{srv.URL + "/tenement/", "t0k", true, `POST /tenement/api/instances/spawn application/json Bearer t0k  {"process":"api","id":"a--b"}`},
		{strings.Replace(srv.URL, "http://", "http://ann:pw@", 1), "t0k", false, `POST /api/instances/spawn application/json Bearer t0k  {"process":"api","id":"a--b"}`},
	} {
		c, err := NewClient(tc.base, tc.token)
		if err != nil {
			t.Fatal(err)
		}
		if kept := c.conns != nil; kept != tc.kept {
			t.Fatalf("%s: kept connections %v, want %v", tc.base, kept, tc.kept)
		}
		res, err := c.Spawn(ctx, "api", "a--b")
		if err != nil || res.Instance != tc.want {
			t.Fatalf("%s: the server saw %q (%v), want %q", tc.base, res.Instance, err, tc.want)
		}
	}
	if c, _ := NewClient("http://tenement.test/", "t0k"); c.hostPort != "tenement.test:80" || c.host != "tenement.test" || c.prefix != "" {
		t.Fatalf("http://tenement.test/: connects to %q, sends Host %q and path prefix %q; want tenement.test:80, tenement.test, none", c.hostPort, c.host, c.prefix)
	}
	bad, _ := NewClient(srv.URL, "t0k\r\nX-Injected: 1")
	if bad.conns != nil {
		t.Fatal("a token that is no header value would go on kept connections")
	}
	if _, err := bad.Spawn(ctx, "api", "a--b"); err == nil || strings.Contains(err.Error(), "t0k") {
		t.Fatalf("a token that is no header value: %v, want an error without it", err)
	}
	c, _ := NewClient(srv.URL, "t0k")
	before := conns.Load()
	for range 10 {
		if _, err := c.Spawn(ctx, "api", "a--b"); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load() - before; n != 1 {
		t.Fatalf("10 spawns in turn opened %d connections, want 1", n)
	}
}

// BenchmarkSpawn is the client's side of one spawn, against a server that
// answers with a canned reply (so the figures are mostly the client's), on
// kept connections and through net/http, 8 calls in flight per core.
func BenchmarkSpawn(b *testing.B) {
	const answer = `{"instance":"api:a--b","socket":"/tmp/x","port":3}`
	addr := cannedServer(b, fmt.Sprintf("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer))
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			c, _ := NewClient("http://"+addr, "t0k", append(tr.opts, WithBufferPool(NewBufferPool()))...)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Spawn(ctx, "api", "a--b"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// cannedServer answers every request on a kept connection with answer.
func cannedServer(b *testing.B, answer string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, r.Body)
					if _, err := io.WriteString(nc, answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// listOf is a server's answer listing n instances, as tenement writes it.
func listOf(n int, health string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"api:t%d--prod","socket":"127.0.0.1:%d","uptime_secs":82,"idle_secs":82,"restarts":0,"health":%q,"storage_used_bytes":0,"storage_quota_bytes":null,"weight":100}`, i, 30000+i, health)
	}
	b.WriteByte(']')
	return b.String()
}

func TestClientListNames(t *testing.T) {
	var body atomic.Value
	body.Store(listOf(3, "healthy"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(body.Load().(string)))
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, "secret-token", WithBufferPool(NewBufferPool()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, changed, err := c.ListNames(ctx, nil)
	if err != nil || !changed || len(m) != 3 || m["api:t2--prod"] != "healthy" {
		t.Fatalf("ListNames = %v, %v, %v", m, changed, err)
	}
	if again, changed, err := c.ListNames(ctx, m); err != nil || changed || len(again) != 3 {
		t.Fatalf("the same list again: %v, changed %v, %v", again, changed, err)
	}
	body.Store(listOf(3, "unhealthy"))
	if next, changed, err := c.ListNames(ctx, m); err != nil || !changed || next["api:t0--prod"] != "unhealthy" || m["api:t0--prod"] != "healthy" {
		t.Fatalf("a changed list: %v, changed %v, %v (the previous map must stay as it was: %v)", next, changed, err, m)
	}
	body.Store(`[{"id": "api:a--b", `)
	if _, _, err := c.ListNames(ctx, m); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a malformed list: %v, want ErrMalformed", err)
	}
}

// BenchmarkListNames is a steady server's list as a watcher reads it
// (1,000 instances, nothing changed), against List.
func BenchmarkListNames(b *testing.B) {
	body := []byte(listOf(1000, "healthy"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) }))
	defer srv.Close()
	ctx := context.Background()
	b.Run("List", func(b *testing.B) {
		c, _ := NewClient(srv.URL, "t")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.List(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Cold: no pooled buffer (as after a collection emptied the pool):
	// the buffer is made the last answer's size at once.
	b.Run("ListNamesCold", func(b *testing.B) {
		c, _ := NewClient(srv.URL, "t")
		prev, _, _ := c.ListNames(ctx, nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, changed, err := c.ListNames(ctx, prev); err != nil || changed {
				b.Fatal(err, changed)
			}
		}
	})
	b.Run("ListNames", func(b *testing.B) {
		c, _ := NewClient(srv.URL, "t", WithBufferPool(NewBufferPool()))
		prev, _, _ := c.ListNames(ctx, nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, changed, err := c.ListNames(ctx, prev); err != nil || changed {
				b.Fatal(err, changed)
			}
		}
	})
}

// A short answer never takes a buffer a list grew: spawns in flight by
// the dozen would each hold one (and lists one of the short ones, grown
// again).
func TestBufferPoolKeepsListBuffersForLists(t *testing.T) {
	bp := NewBufferPool()
	for range 8 {
		b := bp.get(0)
		b.Grow(256 << 10) // as a server's list grows it
		bp.put(b)
	}
	for range 8 {
		if b := bp.get(0); b.Cap() >= longAnswer {
			t.Fatalf("a short answer got a buffer of %d bytes", b.Cap())
		}
	}
	if b := bp.get(5 << 20); b.Cap() != 0 && b.Cap() < longAnswer {
		t.Fatalf("a list got a short answer's buffer (%d bytes)", b.Cap())
	}
	var nilPool *BufferPool
	nilPool.put(nilPool.get(longAnswer)) // a nil pool hands out new buffers and keeps none
}
