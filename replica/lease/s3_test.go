package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/internal/replicastore"
	"github.com/slum-fleet/slum/replica"
)

// The lease against the real store (SeaweedFS): its conditional writes
// are what makes the rules hold.

func TestMain(m *testing.M) { replicastore.Main(m) }

func realLoc(t *testing.T, s *replicastore.Server) replica.Location {
	t.Helper()
	l, err := replica.ParseLocation(s.URL("tenants/" + t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestS3RacingHoldersExactlyOneWins(t *testing.T) {
	s := replicastore.Shared(t)
	l := realLoc(t, s)
	for round := range 2 {
		const n = 8
		var wg sync.WaitGroup
		won := make(chan string, n)
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		for i := range n {
			h, err := NewHolder(s.Store(t, s.Endpoint), l, fmt.Sprintf("r%d-h%d", round, i), DefaultTiming, clock.Real{}, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := h.Acquire(ctx); err == nil {
					won <- h.ID()
				}
			}()
		}
		wg.Wait() // the losers wait out the context (shorter than the TTL)
		cancel()
		close(won)
		var winners []string
		for w := range won {
			winners = append(winners, w)
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: %d holders acquired the lease: %v", round, len(winners), winners)
		}
		// release it for the next round, taken at once
		w := NewWatcher(s.Store(t, s.Endpoint), l, clock.Real{})
		o, err := w.Observe(context.Background())
		if err != nil || o.Record.Holder != winners[0] {
			t.Fatalf("the store says %+v (%v), winner %s", o.Record, err, winners[0])
		}
		time.Sleep(DefaultTiming.TTL)
		if _, err := w.Observe(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := w.ReleaseFenced(context.Background(), "test", "next round", DefaultTiming.TTL); err != nil {
			t.Fatal(err)
		}
	}
}

func TestS3HolderThatStopsRenewingLosesOnlyAfterTTL(t *testing.T) {
	s := replicastore.Shared(t)
	l := realLoc(t, s)
	logf := func(string, ...any) {}
	a, _ := NewHolder(s.Store(t, s.Endpoint), l, "a", DefaultTiming, clock.Real{}, logf)
	if _, err := a.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := NewHolder(s.Store(t, s.Endpoint), l, "b", DefaultTiming, clock.Real{}, logf)
	got := make(chan Acquired, 1)
	go func() {
		acq, err := b.Acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- acq
	}()
	renewUntil := time.Now().Add(3 * time.Second)
	for time.Now().Before(renewUntil) {
		time.Sleep(DefaultTiming.RenewEvery())
		if err := a.Renew(context.Background()); err != nil {
			t.Fatalf("a's renewal while b watches: %v", err)
		}
	}
	stopped := time.Now()
	acq := <-got
	after := time.Since(stopped)
	if after < DefaultTiming.TTL || after > DefaultTiming.TTL+time.Second {
		t.Fatalf("b took the lease %s after a stopped renewing, want TTL (%s) to TTL+1s", after, DefaultTiming.TTL)
	}
	if acq.Generation != 2 {
		t.Fatalf("generation %d, want 2", acq.Generation)
	}
	if err := a.Renew(context.Background()); !errors.Is(err, ErrFenced) {
		t.Fatalf("a renews after losing it: %v, want ErrFenced", err)
	}
	t.Logf("FIGURE lease taken over %s after the holder's last renewal (TTL %s)", after.Round(time.Millisecond), DefaultTiming.TTL)
}
