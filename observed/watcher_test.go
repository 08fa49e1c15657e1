package observed

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/internal/fakeclock"
)

// scriptedServer is a WatchClient whose answers a test sets: probes fail
// or succeed, lists answer or hang until given up.
type scriptedServer struct {
	mu    sync.Mutex
	up    bool
	hang  bool
	names []string
	lists int
}

func (s *scriptedServer) set(up, hang bool, names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.up, s.hang, s.names = up, hang, names
}

func (s *scriptedServer) Ping(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.up {
		return errors.New("connect: connection refused")
	}
	return nil
}

func (s *scriptedServer) ListNames(ctx context.Context, _ map[string]slum.InstanceHealth) (map[string]slum.InstanceHealth, bool, error) {
	s.mu.Lock()
	s.lists++
	hang, names := s.hang, s.names
	s.mu.Unlock()
	if hang {
		<-ctx.Done() // a cut link: nothing comes back
		return nil, false, ctx.Err()
	}
	out := make(map[string]slum.InstanceHealth, len(names))
	for _, n := range names {
		out[n] = "healthy"
	}
	return out, true, nil
}

func (s *scriptedServer) Stream(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// A server cut off with a list in flight comes back: it is listed at once
// (its stale copies are fenced at the first list), not once the old list
// times out.
func TestWatcherListsAtOnceWhenAServerComesBack(t *testing.T) {
	clk := fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	srv := &scriptedServer{}
	srv.set(false, true) // cut off: probes fail, lists hang
	snaps := make(chan *Snapshot, 64)
	pol := WatchPolicy{ProbeInterval: time.Second, ProbeTimeout: time.Hour, ProbeRetry: 250 * time.Millisecond,
		Detector: DetectorPolicy{SuspectAfter: 1, DeadAfter: 2}, PollInterval: 2 * time.Second, PollTimeout: time.Hour}
	w := NewWatcher("s1", srv, pol, clk, func(s *Snapshot) { snaps <- s })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)

	until := func(what string, ok func(*Snapshot) bool, tick time.Duration) *Snapshot {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case s := <-snaps:
				if ok(s) {
					return s
				}
			case <-deadline:
				t.Fatalf("no snapshot where %s", what)
			case <-time.After(5 * time.Millisecond):
				clk.Advance(tick)
			}
		}
	}
	until("the server is dead", func(s *Snapshot) bool { return s.Health.Health == slum.HealthDead }, 250*time.Millisecond)

	// Back, running one copy; the list sent while it was cut off still
	// hangs, and would for an hour.
	srv.set(true, false, "api:a--prod")
	s := until("it is online and listed", func(s *Snapshot) bool {
		return s.Health.Health == slum.HealthOnline && s.Listed
	}, 100*time.Millisecond)
	if _, ok := s.Instances["api:a--prod"]; !ok || len(s.Instances) != 1 {
		t.Fatalf("listed %v, want the one copy it runs", s.Instances)
	}
	if elapsed := clk.Now().Sub(s.Health.Since); elapsed > pol.ProbeInterval {
		t.Errorf("listed %v after it came back, want within one probe interval", elapsed)
	}
}
