package postgres

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/store"
)

// next waits for the feed's next value.
func next(t *testing.T, ch <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the feed closed", what)
		}
	case <-time.After(within):
		t.Fatalf("%s: nothing within %v", what, within)
	}
}

// quiet checks the feed says nothing for a while.
func quiet(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: the feed told of a change", what)
	case <-time.After(200 * time.Millisecond):
	}
}

// A commit made through another connection (another process's store)
// reaches the feed in under 50 ms: desired state and controller status
// alike.
func TestChangesArriveAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, url := openEngine(t)
	ch := e.Changes(ctx)
	next(t, ch, 10*time.Second, "connected")
	other := mustOpen(t, url)
	defer other.Close()
	s := store.New(other)
	lease, err := s.AcquireLease(ctx, "controller", "c", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	quiet(t, ch, "a lease")

	var took []time.Duration
	for i := range 10 {
		start := time.Now()
		if i%2 == 0 {
			if _, err := s.AddServer(ctx, slum.Server{ID: fmt.Sprintf("s%d", i), URL: "http://s.test:8080", CapacityMB: 100}); err != nil {
				t.Fatal(err)
			}
		} else if err := s.WriteReport(ctx, lease.Fence(), slum.Report{Servers: []slum.ServerStatus{{ServerID: "s0", Health: slum.HealthOnline, UpdatedAt: time.Now()}}}); err != nil {
			t.Fatal(err)
		}
		next(t, ch, 5*time.Second, fmt.Sprintf("commit %d", i))
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	// The median, commit included: the machine may be busy.
	if took[len(took)/2] > 50*time.Millisecond {
		t.Fatalf("commits reached the feed in %v (sorted), median over 50 ms", took)
	}
	t.Logf("commit to feed, commit included: %v", took)

	// A write that rolls back tells nothing.
	if _, err := s.AddServer(ctx, slum.Server{ID: "s0", URL: "http://s.test:8080", CapacityMB: 100}); err == nil {
		t.Fatal("a server added twice")
	}
	quiet(t, ch, "a refused write")
	cancel()
	for range ch {
	}
}

// The feed makes its connection again by itself, and says so, so the
// reader reads again whatever it missed.
func TestChangesSurviveALostConnection(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, _ := openEngine(t)
	ch := e.Changes(ctx)
	next(t, ch, 10*time.Second, "connected")
	n, err := execSQL(e, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`, listenerName)
	if err != nil || n != 1 {
		t.Fatalf("terminated %d listeners: %v", n, err)
	}
	next(t, ch, 5*time.Second, "connected again")
	if _, _, err := store.New(e).AddTenant(ctx, slum.Tenant{ID: "t", Domain: "t.example.com"}); err != nil {
		t.Fatal(err)
	}
	next(t, ch, 5*time.Second, "a commit after the reconnection")
	cancel()
	for range ch {
	}
}

// Closing the engine ends its feeds.
func TestCloseEndsTheFeed(t *testing.T) {
	url := fleetURL(t)
	e := mustOpen(t, url)
	ch := e.Changes(context.Background())
	next(t, ch, 10*time.Second, "connected")
	e.Close()
	select {
	case _, ok := <-ch:
		for ok {
			_, ok = <-ch
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the feed outlived its engine")
	}
}
