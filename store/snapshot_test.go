package store

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestInternerKeepsOneCopyOfEachValue(t *testing.T) {
	w := interner{}
	a := w.of(strings.Clone("s1"))
	b := w.of(strings.Clone("s1"))
	if a != "s1" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatalf("two equal values are two copies")
	}
	if c := w.of(strings.Clone("s2")); c != "s2" || unsafe.StringData(c) == unsafe.StringData(a) {
		t.Fatalf("another value came back as %q", c)
	}
	// Full, it hands back what it is given and keeps nothing more.
	for i := len(w); i < maxInterned; i++ {
		w.of(strconv.Itoa(i))
	}
	fresh := strings.Clone("one more")
	if got := w.of(fresh); got != fresh || unsafe.StringData(got) != unsafe.StringData(fresh) || len(w) != maxInterned {
		t.Fatalf("a full interner kept %q (%d values)", got, len(w))
	}
	if got := w.of(strings.Clone("s1")); unsafe.StringData(got) != unsafe.StringData(a) {
		t.Fatal("a full interner lost the values it held")
	}
}
