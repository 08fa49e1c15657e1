package reconcile

import "sync"

// mailbox hands values from many goroutines to one owner without ever
// blocking the senders: results of actions pile up while the controller
// plans, instead of stalling the executor's workers. It holds only what
// is waiting, however much that is.
type mailbox[T any] struct {
	mu    sync.Mutex
	items []T
	ready chan struct{} // signalled when items may be waiting
}

func newMailbox[T any]() *mailbox[T] { return &mailbox[T]{ready: make(chan struct{}, 1)} }

func (m *mailbox[T]) put(v T) {
	m.mu.Lock()
	m.items = append(m.items, v)
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

// take returns everything waiting, oldest first, and empties the box. The
// box goes on filling spare's array: what the owner took the time before
// and is done with (nil at first). Two arrays then carry a steady flow of
// results (100,000 spawns' results grew ~40 MB of new arrays without), and
// one grown past keepCap by a burst is let go.
func (m *mailbox[T]) take(spare []T) []T {
	if cap(spare) > keepCap {
		spare = nil
	}
	clear(spare)
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.items
	m.items = spare[:0]
	return out
}

// keepCap is the largest array a mailbox reuses.
const keepCap = 4096

// waiting reports how many values are waiting.
func (m *mailbox[T]) waiting() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}
