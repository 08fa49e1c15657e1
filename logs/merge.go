package logs

import (
	"container/heap"
	"slices"
)

// sortCopy puts one copy's lines in time order. tenement keeps them in
// the order it read them, which is time order but for a millisecond or so
// between a copy's stdout and stderr; lines of one time keep their order.
func sortCopy(lines []Line) {
	slices.SortStableFunc(lines, func(a, b Line) int { return a.Time.Compare(b.Time) })
}

// merge merges lists, each in time order, into one in time order. Lines
// of one time come in the order of their lists, and of their places in
// them.
func merge(lists [][]Line) []Line {
	n := 0
	h := make(mergeHeap, 0, len(lists))
	for i, l := range lists {
		n += len(l)
		if len(l) > 0 {
			h = append(h, cursor{lines: l, list: i})
		}
	}
	heap.Init(&h)
	out := make([]Line, 0, n)
	for len(h) > 0 {
		c := &h[0]
		out = append(out, c.lines[0])
		if c.lines = c.lines[1:]; len(c.lines) == 0 {
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
	}
	return out
}

// cursor is the rest of one list being merged.
type cursor struct {
	lines []Line
	list  int
}

type mergeHeap []cursor

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if c := h[i].lines[0].Time.Compare(h[j].lines[0].Time); c != 0 {
		return c < 0
	}
	return h[i].list < h[j].list
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(cursor)) }
func (h *mergeHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// newest keeps the last n lines (all for n 0).
func newest(lines []Line, n int) []Line {
	if n > 0 && len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}
