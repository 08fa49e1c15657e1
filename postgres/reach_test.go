package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/api"
	"github.com/slum-fleet/slum/api/client"
	"github.com/slum-fleet/slum/reconcile"
	"github.com/slum-fleet/slum/routes"
	"github.com/slum-fleet/slum/store"
)

// slowPoll is every reader's poll in TestCommitsReachEveryReaderAtOnce:
// far longer than the 50 ms allowed, so only the feed can explain a
// reader that keeps to it.
const slowPoll = 10 * time.Second

// A commit of the CLI (a store of its own) reaches a controller's revision
// watch, an API's watch ('slum serve') and a router following the
// database ('slum route --db') in under 50 ms, through LISTEN/NOTIFY:
// each reads on a connection of its own, as on another host.
func TestCommitsReachEveryReaderAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, url := openEngine(t)
	open := func() *store.Store {
		s := store.New(mustOpen(t, url))
		t.Cleanup(func() { s.Close() })
		return s
	}
	cli := open()
	seen := map[string]chan int64{"controller": make(chan int64, 1000), "api": make(chan int64, 1000), "router": make(chan int64, 1000)}

	// The controller, with no servers to act on.
	cst := open()
	cfg := reconcile.DefaultConfig()
	cfg.RevisionPoll = slowPoll
	c := reconcile.New(cst, reconcile.HTTPClientFactory(time.Second), cfg, slog.New(slog.DiscardHandler), nil)
	lease, err := cst.AcquireLease(ctx, slum.ControllerLease, "reach", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Run(ctx, lease.Fence()) }()
	go watchGauge(ctx, c, seen["controller"])

	// The API's watch, through its client.
	_, token, err := cli.CreateAPIToken(ctx, slum.RoleRead, "reach")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(open(), api.Config{WatchEvery: slowPoll})
	go srv.Run(ctx)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close) // after cancel, which ends the watch
	cl, err := client.New(hs.URL, token, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cl.Watch(ctx, client.WatchOptions{}, func(m client.Message) error {
			if m.Batch != nil {
				send(seen["api"], m.Batch.Revision)
			}
			return nil
		})
	}()

	// The router's follower.
	rst := open()
	go routes.Follow(ctx, rst, slowPoll, func(tab *routes.Table) { send(seen["router"], tab.Revision()) }, func(error) {})

	time.Sleep(time.Second) // every reader has read the fleet once and listens
	took := map[string][]time.Duration{}
	for i := range 10 {
		if _, err := cli.AddServer(ctx, slum.Server{ID: fmt.Sprintf("s%d", i), URL: "http://s.test:8080", CapacityMB: 100}); err != nil {
			t.Fatal(err)
		}
		start := time.Now() // committed: from here the readers hear of it
		rev, err := cli.Revision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for name, ch := range seen {
			took[name] = append(took[name], waitRevision(t, ch, rev, name).Sub(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The median: the machine may be busy. Under the race detector,
	// which slows each reader's read of the fleet several times over, a
	// looser bound still tells the feed (every poll is 10 s) from polling.
	limit := 50 * time.Millisecond
	if raceEnabled {
		limit = 500 * time.Millisecond
	}
	for name, d := range took {
		slices.Sort(d)
		t.Logf("%s: commit to seen: %v", name, d)
		if d[len(d)/2] > limit {
			t.Errorf("%s saw commits in %v (sorted), median over %v", name, d, limit)
		}
	}
}

// waitRevision waits for ch to carry rev or later and returns when.
func waitRevision(t *testing.T, ch <-chan int64, rev int64, name string) time.Time {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case r := <-ch:
			if r >= rev {
				return time.Now()
			}
		case <-deadline:
			t.Fatalf("%s never saw revision %d", name, rev)
			return time.Time{}
		}
	}
}

// watchGauge sends the controller's desired revision each time it moves,
// looking every millisecond.
func watchGauge(ctx context.Context, c *reconcile.Controller, out chan<- int64) {
	last := -1.0
	for ctx.Err() == nil {
		fams, _ := c.Metrics().Registry.Gather()
		for _, f := range fams {
			if f.GetName() == "slum_desired_revision" && len(f.GetMetric()) == 1 {
				if v := f.GetMetric()[0].GetGauge().GetValue(); v != last {
					last = v
					send(out, int64(v))
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// send sends v unless ch is full (a reader that fell behind is failed by
// its wait, not by a stuck sender).
func send(ch chan<- int64, v int64) {
	select {
	case ch <- v:
	default:
	}
}
