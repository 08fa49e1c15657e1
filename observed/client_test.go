package observed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestClientClassifiesFailures(t *testing.T) {
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
			c, err := NewClient(srv.URL, "secret-token")
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
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	c, _ := NewClient(srv.URL, "t", WithTimeout(100*time.Millisecond))
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
