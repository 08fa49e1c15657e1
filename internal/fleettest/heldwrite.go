package fleettest

import (
	"context"
	"sync"
	"testing"

	"github.com/slum-fleet/slum/db"
	"github.com/slum-fleet/slum/store"
)

// HeldWrite is a write transaction left open, as a writer whose host was
// cut off in the middle of it leaves it: it has bumped the desired
// revision and holds the engine's write lock until Release.
type HeldWrite struct {
	release chan struct{}
	done    chan error
	once    sync.Once
	err     error
}

// HoldWrite begins such a write on eng and returns once it holds the
// write lock; the test's end releases it if the test did not.
func HoldWrite(t testing.TB, ctx context.Context, eng store.Engine) *HeldWrite {
	t.Helper()
	h := &HeldWrite{release: make(chan struct{}), done: make(chan error, 1)}
	holding := make(chan struct{})
	go func() {
		h.done <- eng.InTx(ctx, func(q db.Querier) error {
			if err := q.BumpRevision(ctx); err != nil {
				return err
			}
			// A statement whose result is read sends the queued ones, the
			// lock first.
			if _, err := q.GetRevision(ctx); err != nil {
				return err
			}
			close(holding)
			<-h.release // nothing more comes from this writer until then
			return nil
		})
	}()
	select {
	case <-holding:
	case err := <-h.done:
		t.Fatalf("hold a write: %v", err)
	}
	t.Cleanup(func() { _ = h.Release() })
	return h
}

// Release lets the writer go on, and says how its transaction ended: nil
// when it committed.
func (h *HeldWrite) Release() error {
	h.once.Do(func() {
		close(h.release)
		h.err = <-h.done
	})
	return h.err
}
