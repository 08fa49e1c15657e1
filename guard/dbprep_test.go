package guard

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slum-fleet/slum/replica"
	"github.com/slum-fleet/slum/replica/lease"
)

func TestJudge(t *testing.T) {
	loc, _ := replica.ParseLocation("s3://b/tenants/alice?endpoint=http://127.0.0.1:1")
	viaProxy, _ := replica.ParseLocation("s3://b/tenants/alice?endpoint=http://127.0.0.1:2")
	mine := marker{Generation: 4, Replica: loc.Canonical()}
	cases := []struct {
		name      string
		exists    bool
		m         marker
		hasMarker bool
		prevDB    int64
		want      freshness
	}{
		{"no database", false, mine, true, 4, freshMissing},
		{"this copy wrote last", true, mine, true, 4, freshCurrent},
		{"another copy wrote since", true, mine, true, 5, freshStale},
		{"a marker of another replica", true, marker{Generation: 4, Replica: "s3://b/tenants/bob"}, true, 4, freshStale},
		{"an existing app's first start under the guard", true, marker{}, false, 0, freshCurrent},
		{"a database without a marker, a replica written by guards", true, marker{}, false, 3, freshStale},
		{"an unreadable marker", true, marker{Generation: -1}, true, 0, freshStale},
	}
	for _, c := range cases {
		if got := judge(c.exists, c.m, c.hasMarker, loc, c.prevDB); got != c.want {
			t.Errorf("%s: judge = %d, want %d", c.name, got, c.want)
		}
	}
	// the same replica through another endpoint is the same replica
	if judge(true, mine, true, viaProxy, 4) != freshCurrent {
		t.Error("a replica reached through another endpoint counted as another replica")
	}
}

func TestMoveAsideKeepsEveryFile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "app.db")
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		if err := os.WriteFile(p, []byte(filepath.Base(p)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, ".app.db-litestream", "ltx"), 0o755); err != nil {
		t.Fatal(err)
	}
	dest, err := moveAside(db, 3, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app.db", "app.db-wal", "app.db-shm", ".app.db-litestream"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s is still in place", name)
		}
		if _, err := os.Stat(filepath.Join(dest, name)); err != nil {
			t.Errorf("%s was not kept: %v", name, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "app.db-wal")); string(b) != "app.db-wal" {
		t.Errorf("the WAL's content changed: %q", b)
	}
	// a second stale copy does not overwrite the first
	os.WriteFile(db, []byte("again"), 0o644)
	dest2, err := moveAside(db, 3, time.Unix(1, 0))
	if err != nil || dest2 == dest {
		t.Fatalf("second move aside: %s, %v", dest2, err)
	}
}

func TestMarkerRoundTrip(t *testing.T) {
	db := filepath.Join(t.TempDir(), "app.db")
	if _, ok, err := readMarker(db); ok || err != nil {
		t.Fatalf("absent marker: ok=%v err=%v", ok, err)
	}
	want := marker{Generation: 7, Replica: "s3://b/p"}
	if err := writeMarker(db, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := readMarker(db)
	if !ok || err != nil || got != want {
		t.Fatalf("marker %+v ok=%v err=%v, want %+v", got, ok, err, want)
	}
}

// TestPredecessorGone: only a lease of this very copy (instance, server,
// host) whose process is gone is taken at once; anything else waits for
// the lapse.
func TestPredecessorGone(t *testing.T) {
	dead := func(int) bool { return false }
	alive := func(int) bool { return true }
	rec := func(holder, server string) lease.Record { return lease.Record{Holder: holder, Server: server} }
	for _, tc := range []struct {
		name   string
		rec    lease.Record
		server string
		alive  func(int) bool
		want   bool
	}{
		{"its own dead predecessor", rec("a--prod@vm/pid4242/ab", "s1"), "s1", dead, true},
		{"its predecessor still runs", rec("a--prod@vm/pid4242/ab", "s1"), "s1", alive, false},
		{"the copy on another server", rec("a--prod@vm/pid4242/ab", "s2"), "s1", dead, false},
		{"no server named by this guard", rec("a--prod@vm/pid4242/ab", ""), "", dead, false},
		{"no server in the lease", rec("a--prod@vm/pid4242/ab", ""), "s1", dead, false},
		{"another instance", rec("a--backup@vm/pid4242/ab", "s1"), "s1", dead, false},
		{"another host", rec("a--prod@other/pid4242/ab", "s1"), "s1", dead, false},
		{"a holder id it cannot read", rec("a--prod@vm/4242", "s1"), "s1", dead, false},
		{"a pid that is no number", rec("a--prod@vm/pidX/ab", "s1"), "s1", dead, false},
		{"init", rec("a--prod@vm/pid1/ab", "s1"), "s1", dead, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := predecessorGone(tc.rec, "a--prod", tc.server, "vm", tc.alive); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
