package reconcile

import (
	"testing"
	"time"

	"github.com/slum-fleet/slum"
)

// Entries keep when each copy was last touched as an offset from the
// ledger's first time; the times they give back are the ones put in,
// with the monotonic reading the planner compares lists' times by.
func TestLedgerKeepsWhenEachCopyWasTouched(t *testing.T) {
	now := time.Now() // with a monotonic reading
	tests := []struct {
		name  string
		added time.Time
		touch time.Duration // after added; 0: not touched again
	}{
		{"added, wall clock only", t0, 0},
		{"touched later", t0, 90 * time.Second},
		{"monotonic", now, 0},
		{"monotonic, touched later", now, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLedger()
			l.Add(slum.Placement{ServerID: "s1", Name: "other"}, tt.added.Add(-time.Hour)) // the epoch, before
			l.Add(slum.Placement{ServerID: "s1", Name: "api:a--prod"}, tt.added)
			want := tt.added
			if tt.touch > 0 {
				want = tt.added.Add(tt.touch)
				l.Touch("s1", "api:a--prod", want)
			}
			got := l.Touched(l.Owned("s1")["api:a--prod"])
			if !got.Equal(want) {
				t.Fatalf("touched %v, want %v", got, want)
			}
			if listed := want.Add(-time.Nanosecond); listed.After(got) {
				t.Fatal("a list from just before the touch reads as after it")
			}
			if listed := want.Add(time.Nanosecond); !listed.After(got) {
				t.Fatal("a list from just after the touch reads as before it")
			}
		})
	}
}

// A result can come after its server left the fleet: touching, forgetting
// or clearing the busy mark of a copy on a server the ledger no longer
// has changes nothing, and does not bring the server back.
func TestLedgerIgnoresServersItDropped(t *testing.T) {
	l := NewLedger()
	l.Add(slum.Placement{ServerID: "s1", Name: "api:a--prod"}, t0)
	l.SetBusy("s1", "api:a--prod", true)
	l.DropServer("s1")
	v := l.version("s1")
	l.Touch("s1", "api:a--prod", t0.Add(time.Second))
	l.SetBusy("s1", "api:a--prod", false)
	l.Forget("s1", "api:a--prod")
	l.Touch("never", "x", t0)
	if l.Owns("s1", "api:a--prod") || l.Busy("s1", "api:a--prod") || l.Size() != 0 || l.version("s1") != v {
		t.Fatalf("the dropped server is back: owns %v, busy %v, %d placements", l.Owns("s1", "api:a--prod"), l.Busy("s1", "api:a--prod"), l.Size())
	}
}

// A placed copy's busy mark lasts until it is cleared: recording the
// placement again or touching it keeps it, forgetting the copy drops it.
// A copy slum did not place has none.
func TestLedgerKeepsBusyMarksOfPlacedCopies(t *testing.T) {
	const a, b = "api:a--prod", "api:b--prod"
	l := NewLedger()
	l.Add(slum.Placement{ServerID: "s1", Name: a}, t0)
	l.SetBusy("s1", a, true)
	l.SetBusy("s1", b, true) // not placed
	steps := []struct {
		what    string
		do      func()
		busyA   bool
		changes bool // the server's version moves
	}{
		{"recorded again", func() { l.Add(slum.Placement{ServerID: "s1", Name: a}, t0.Add(time.Second)) }, true, true},
		{"touched", func() { l.Touch("s1", a, t0.Add(2*time.Second)) }, true, true},
		{"marked busy again", func() { l.SetBusy("s1", a, true) }, true, false},
		{"cleared", func() { l.SetBusy("s1", a, false) }, false, true},
		{"cleared again", func() { l.SetBusy("s1", a, false) }, false, false},
		{"busy, then forgotten", func() { l.SetBusy("s1", a, true); l.Forget("s1", a) }, false, true},
		{"placed anew, before the ledger's first time", func() { l.Add(slum.Placement{ServerID: "s1", Name: a}, t0.Add(-time.Hour-time.Nanosecond)) }, false, true},
		{"busy again", func() { l.SetBusy("s1", a, true) }, true, true},
	}
	if l.Busy("s1", b) || l.Owns("s1", b) {
		t.Fatal("a copy slum did not place is busy or placed")
	}
	for _, st := range steps {
		v := l.version("s1")
		st.do()
		if got := l.Busy("s1", a); got != st.busyA {
			t.Errorf("%s: busy %v, want %v", st.what, got, st.busyA)
		}
		if moved := l.version("s1") != v; moved != st.changes {
			t.Errorf("%s: the server's version moved: %v, want %v", st.what, moved, st.changes)
		}
	}
	// A time too far to hold reads as long ago, not wrapped around.
	l.Add(slum.Placement{ServerID: "s1", Name: b}, time.Time{})
	if e := l.Owned("s1")[b]; !l.Touched(e).Before(t0.AddDate(-100, 0, 0)) || e.busy() {
		t.Fatalf("placed at the zero time, read as touched at %v (busy %v)", l.Touched(e), e.busy())
	}
	// The mark shares the entry with the time, which stays exact.
	if e, want := l.Owned("s1")[a], t0.Add(-time.Hour-time.Nanosecond); !l.Touched(e).Equal(want) {
		t.Fatalf("placed anew at %v, touched %v", want, l.Touched(e))
	}
}
