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
	got := m.take(nil)
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
	if m.waiting() != 0 || len(m.take(nil)) != 0 {
		t.Fatal("take did not empty the mailbox")
	}
}

// The array taken and handed back is filled next, emptied of the values
// taken before; one a burst grew too large is not.
func TestMailboxReusesTheArrayHandedBack(t *testing.T) {
	m := newMailbox[*int]()
	one, two := new(int), new(int)
	m.put(one)
	m.put(two)
	first := m.take(nil)
	m.put(two)
	second := m.take(first)
	if len(second) != 1 || second[0] != two {
		t.Fatalf("took %v, want [%p]", second, two)
	}
	if first[:2][0] != nil || first[:2][1] != nil {
		t.Fatal("the array handed back still points at the values taken from it")
	}
	m.put(one)
	if third := m.take(second); len(third) != 1 || third[0] != one || &third[0] != &first[:1][0] {
		t.Fatalf("took %v in %p, want [%p] in the array handed back before, %p", third, third, one, first)
	}
	big := make([]*int, keepCap+1)
	m.take(big)
	m.put(one)
	if got := m.take(nil); cap(got) == cap(big) {
		t.Fatalf("the mailbox kept an array of %d", cap(got))
	}
}
