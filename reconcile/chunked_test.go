package reconcile

import (
	"runtime"
	"slices"
	"testing"
)

func TestChunkedKeepsEveryRecordInOrder(t *testing.T) {
	for _, n := range []int{0, 1, chunkLen - 1, chunkLen, chunkLen + 1, 2*chunkLen + 5} {
		want := make([]int, n)
		for i := range want {
			want[i] = i * 3
		}
		c := ChunkedOf(want)
		if c.Len() != n || !slices.Equal(c.Slice(), want) {
			t.Fatalf("n=%d: len %d, records differ", n, c.Len())
		}
		for i := range n {
			if *c.At(i) != want[i] {
				t.Fatalf("n=%d: At(%d) = %d, want %d", n, i, *c.At(i), want[i])
			}
		}
		seen := 0
		for i, v := range c.All() {
			if i != seen || *v != want[i] {
				t.Fatalf("n=%d: All yields %d at %d, want %d at %d", n, *v, i, want[seen], seen)
			}
			seen++
		}
		if seen != n {
			t.Fatalf("n=%d: All yielded %d records", n, seen)
		}
	}
}

// A writer from the previous records copies only the arrays it writes
// to; the previous records stay as they were.
func TestChunkedWriterSharesWhatItDoesNotWrite(t *testing.T) {
	prev := ChunkedOf(make([]int, 3*chunkLen+10))
	w := sharingChunked(prev)
	if !w.shared(0) || *w.get(chunkLen + 1) != 0 {
		t.Fatal("a fresh sharing writer does not read the previous records")
	}
	*w.at(chunkLen + 1) = 7
	next := w.done()
	for k := range prev.arrays {
		if same := &next.arrays[k][0] == &prev.arrays[k][0]; same != (k != 1) {
			t.Errorf("array %d shared: %v", k, same)
		}
	}
	if *next.At(chunkLen + 1) != 7 || *prev.At(chunkLen + 1) != 0 {
		t.Fatalf("written %d, previous now %d", *next.At(chunkLen + 1), *prev.At(chunkLen + 1))
	}
	if w.shared(chunkLen) || !w.shared(2*chunkLen) {
		t.Fatal("shared says the wrong arrays are the writer's own")
	}
	fresh := newChunkedWriter[int](chunkLen + 1)
	if fresh.shared(0) || fresh.shared(chunkLen) || fresh.done().Len() != chunkLen+1 {
		t.Fatal("a fresh writer's arrays are not its own")
	}
}

// A weak view tells an array still shared from one replaced, and lets
// go of arrays nobody else holds.
func TestWeakChunkedSeesWhatIsStillShared(t *testing.T) {
	prev := ChunkedOf(make([]int, 2*chunkLen))
	view := weakChunkedOf(prev)
	w := sharingChunked(prev)
	*w.at(0) = 1
	next := w.done()
	if !view.of(next) || view.same(next, 0) || !view.same(next, 1) {
		t.Fatal("the view does not tell the written array from the shared one")
	}
	if a := view.array(next, 0); len(a) != chunkLen || a[0] != 0 {
		t.Fatalf("the replaced array reads %v…", a[:1])
	}
	if view.of(ChunkedOf(make([]int, chunkLen))) {
		t.Fatal("a view of 2,048 records matches 1,024")
	}
	runtime.GC() // prev is not used again: only next holds its second array
	if view.array(next, 0) != nil {
		t.Fatal("the view keeps an array nobody else holds")
	}
	if !view.same(next, 1) {
		t.Fatal("the shared array, still held by the next records, is gone from the view")
	}
}
