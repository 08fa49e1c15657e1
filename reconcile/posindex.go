package reconcile

import "hash/maphash"

// posIndex finds a row by its key: an open-addressing table of row
// positions, the keys staying in the rows. It is what a map from key to
// row would be, at a fraction of the size and with nothing in it for the
// collector to scan: 4 bytes a slot, at most half of them full, where a
// map[string]*Desired holds a string header, a pointer and its own
// overhead per entry (the fleet's four maps were 20 MB of its 28 MB at
// 100,000 instances).
type posIndex struct {
	seed  maphash.Seed
	slots []int32 // a row's position + 1; 0 is an empty slot
	key   func(pos int32) string
}

// newPosIndex returns an empty index with room for n rows, whose keys key
// gives.
func newPosIndex(n int, key func(pos int32) string) posIndex {
	size := 8
	for size < 2*n {
		size <<= 1
	}
	return posIndex{seed: maphash.MakeSeed(), slots: make([]int32, size), key: key}
}

// slot is where k is, or the empty slot where it would go.
func (x *posIndex) slot(k string) *int32 {
	mask := uint64(len(x.slots) - 1)
	for s := maphash.String(x.seed, k) & mask; ; s = (s + 1) & mask {
		if p := x.slots[s]; p == 0 || x.key(p-1) == k {
			return &x.slots[s]
		}
	}
}

// put adds the row at pos, in place of a row with the same key (as a
// map's entry would be replaced). The index must have room for it.
func (x *posIndex) put(pos int32) { *x.slot(x.key(pos)) = pos + 1 }

// find returns the position of the row whose key is k.
func (x *posIndex) find(k string) (int32, bool) {
	if len(x.slots) == 0 {
		return 0, false
	}
	p := *x.slot(k)
	return p - 1, p != 0
}
