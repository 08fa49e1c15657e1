package reconcile

import (
	"sync"
	"testing"
)

func TestMailboxNeverBlocksAndLosesNothing(t *testing.T) {
	m := newMailbox[int]()
	const senders, each = 8, 1000
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m.put(s*each + i) // nobody takes yet: must not block
			}
		}()
	}
	wg.Wait()
	select {
	case <-m.ready:
	default:
		t.Fatal("values waiting, but ready was not signalled")
	}
	if n := m.waiting(); n != senders*each {
		t.Fatalf("%d waiting, want %d", n, senders*each)
	}
	got := m.take()
	seen := make(map[int]bool, len(got))
	last := make([]int, senders)
	for s := range last {
		last[s] = -1
	}
	for _, v := range got {
		seen[v] = true
		s, i := v/each, v%each
		if i <= last[s] {
			t.Fatalf("sender %d's values out of order: %d after %d", s, i, last[s])
		}
		last[s] = i
	}
	if len(seen) != senders*each {
		t.Fatalf("took %d distinct values, want %d", len(seen), senders*each)
	}
	if m.waiting() != 0 || len(m.take()) != 0 {
		t.Fatal("take did not empty the mailbox")
	}
}
