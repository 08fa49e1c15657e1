package reconcile

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/clock"
)

// intent is the desired state as the executor's workers see it: the
// newest fleet the loop loaded and the newest revision seen committed.
// The loop writes it; workers check each action against it as they send.
type intent struct {
	clock  clock.Clock
	fleet  atomic.Pointer[Fleet]
	latest atomic.Int64 // newest revision seen committed

	mu     sync.Mutex
	loaded chan struct{} // closed (and replaced) when a fleet is loaded
}

func newIntent(clk clock.Clock) *intent { return &intent{clock: clk, loaded: make(chan struct{})} }

// load makes f the fleet actions are checked against.
func (in *intent) load(f *Fleet) {
	in.fleet.Store(f)
	in.seen(f.Revision)
	in.mu.Lock()
	close(in.loaded)
	in.loaded = make(chan struct{})
	in.mu.Unlock()
}

// seen notes a revision committed, loaded or not.
func (in *intent) seen(rev int64) {
	for {
		cur := in.latest.Load()
		if rev <= cur || in.latest.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// catchUp bounds how long a worker waits for the loop to load a revision
// it knows was committed.
const catchUp = 500 * time.Millisecond

// check decides, as an action is about to be sent, whether the newest
// desired state still wants it. When a commit has been seen that the loop
// has not loaded yet, it waits (for at most catchUp) for the loop to load
// it, so an instance removed a moment ago is not spawned.
func (in *intent) check(a Action) error {
	f := in.fleet.Load()
	var limit <-chan time.Time
waiting:
	for f.Revision < in.latest.Load() {
		in.mu.Lock()
		loaded := in.loaded
		in.mu.Unlock()
		if f = in.fleet.Load(); f.Revision >= in.latest.Load() {
			break
		}
		if limit == nil {
			limit = in.clock.After(catchUp)
		}
		select {
		case <-loaded:
		case <-limit:
			break waiting
		}
		f = in.fleet.Load()
	}
	d, ok := f.Instance(a.Instance)
	wantedHere := ok && d.ServerID == a.ServerID && d.Name == a.Name && d.DesiredState == slum.StateRunning
	switch a.Kind {
	case Spawn:
		if !wantedHere {
			return fmt.Errorf("%s is no longer desired on %s (revision %d)", a.Instance, a.ServerID, f.Revision)
		}
	case Stop:
		if wantedHere {
			return fmt.Errorf("%s is desired on %s again (revision %d)", a.Instance, a.ServerID, f.Revision)
		}
	}
	return nil
}
