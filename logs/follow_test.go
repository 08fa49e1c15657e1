package logs

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/observed"
)

// following runs Follow on the fleet with a fake clock until the test
// ends; until advances the clock while it waits.
type following struct {
	t    *testing.T
	clk  *fakeclock.Clock
	rec  *record
	done chan error
	stop context.CancelFunc
}

func follow(t *testing.T, f *testFleet, q Query) *following {
	t.Helper()
	q.Tenant, q.Follow = "alice", true
	clk := fakeclock.New(time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	fw := &following{t: t, clk: clk, rec: &record{}, done: make(chan error, 1), stop: cancel}
	go func() {
		fw.done <- Follow(ctx, f.st, q, Options{Clock: clk, Timeout: 2 * time.Second}, fw.rec.output())
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-fw.done:
		case <-time.After(10 * time.Second):
			t.Error("Follow did not return when cancelled")
		}
	})
	return fw
}

// until waits for ok, moving the clock 50 ms every 2 ms of real time.
func (fw *following) until(what string, ok func() bool) {
	fw.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			fw.t.Fatalf("%s: not within 10 s; so far:\n%s", what, fw.rec)
		}
		time.Sleep(2 * time.Millisecond)
		fw.clk.Advance(50 * time.Millisecond)
	}
}

// once checks that no line was written twice, and that each copy's lines
// came in time order.
func (fw *following) once() {
	fw.t.Helper()
	ls, _ := fw.rec.snapshot()
	seen := map[string]bool{}
	last := map[string]time.Time{}
	for _, l := range ls {
		k := fmt.Sprintf("%s %d %s %s", l.Copy, l.Time.UnixMilli(), l.Level, l.Message)
		if seen[k] {
			fw.t.Fatalf("written twice: %s\n%s", k, fw.rec)
		}
		seen[k] = true
		if l.Time.Before(last[l.Copy]) {
			fw.t.Fatalf("%s's lines out of order at %q\n%s", l.Copy, l.Message, fw.rec)
		}
		last[l.Copy] = l.Time
	}
}

// Following alice while her serving server dies: the lines of every copy
// before, a notice when its stream is lost, the new copy's lines once the
// instance fails over, the dead server's copy marked, and nothing twice.
func TestFollowAcrossAFailover(t *testing.T) {
	f := newTestFleet(t, 3)
	f.report([]string{"s1", "s2", "s3"}, "prod@s1")
	f.sims["s1"].Put("api", "alice--prod")
	f.sims["s2"].Put("api", "alice--backup")
	f.log("s1", "prod", "stdout", "p1")
	fw := follow(t, f, Query{})
	fw.until("the history", func() bool {
		return fw.rec.has("prod@s1", "p1") && fw.rec.has("backup@s2", "alice--backup listening on port 30000")
	})
	f.log("s2", "backup", "stdout", "b1")
	f.log("s1", "prod", "stderr", "p2")
	fw.until("new lines", func() bool { return fw.rec.has("backup@s2", "b1") && fw.rec.has("prod@s1", "p2") })

	if err := f.sims["s1"].Kill(); err != nil {
		t.Fatal(err)
	}
	fw.until("the lost stream said", func() bool { return fw.rec.said("prod@s1", "lost its log stream") })
	f.report([]string{"s1=dead", "s2", "s3"}, "backup@s2")
	f.failover("prod", "s3")
	fw.until("the new copy found", func() bool {
		return fw.rec.said("prod@s3", "a new copy") && fw.rec.said("prod@s1", "server s1 is dead")
	})
	f.sims["s3"].Put("api", "alice--prod")
	f.log("s3", "prod", "stdout", "p3 on s3")
	f.log("s2", "backup", "stdout", "b2")
	fw.until("the new copy's lines", func() bool { return fw.rec.has("prod@s3", "p3 on s3") && fw.rec.has("backup@s2", "b2") })

	// s1 comes back, restarted: empty, and still reported dead.
	if err := f.sims["s1"].SetDown(false); err != nil {
		t.Fatal(err)
	}
	fw.until("the home copy connected again", func() bool { return fw.rec.said("prod@s1", "connected again") })
	f.sims["s1"].Put("api", "alice--prod") // a stale copy, say
	f.log("s1", "prod", "stdout", "stale")
	fw.until("the stale copy's line", func() bool { return fw.rec.has("prod@s1", "stale") })
	ls, _ := fw.rec.snapshot()
	for _, l := range ls {
		if l.Copy == "prod@s1" && l.Message == "stale" && l.Gone != "server s1 is dead" {
			t.Fatalf("the dead server's copy's line is not marked: %+v", l)
		}
		if l.Copy == "prod@s3" && l.Gone != "" {
			t.Fatalf("the serving copy's line is marked: %+v", l)
		}
	}
	f.report([]string{"s1", "s2", "s3"}, "backup@s2")
	fw.until("the old copy said", func() bool { return fw.rec.said("prod@s1", "an old copy: prod runs on s3") })
	fw.once()
}

// A cut link: the stream is lost, lines printed meanwhile are kept by the
// server, and once it is back they are written, once, with nothing of
// before again.
func TestFollowReconnectRepeatsNothing(t *testing.T) {
	f := newTestFleet(t, 2)
	f.report([]string{"s1", "s2"}, "prod@s1")
	f.sims["s1"].Put("api", "alice--prod")
	f.log("s1", "prod", "stdout", "a", "b")
	fw := follow(t, f, Query{Instance: "prod"})
	fw.until("the history", func() bool { return fw.rec.has("prod@s1", "b") })
	if err := f.sims["s1"].SetDown(true); err != nil {
		t.Fatal(err)
	}
	fw.until("the lost stream said", func() bool { return fw.rec.said("prod@s1", "lost its log stream") })
	f.log("s1", "prod", "stdout", "c", "c")
	if err := f.sims["s1"].SetDown(false); err != nil {
		t.Fatal(err)
	}
	fw.until("connected again", func() bool { return fw.rec.said("prod@s1", "connected again") })
	f.log("s1", "prod", "stdout", "d")
	fw.until("the new line", func() bool { return fw.rec.has("prod@s1", "d") })
	ls, _ := fw.rec.snapshot()
	var got []string
	for _, l := range ls {
		got = append(got, l.Message)
	}
	if want := []string{"alice--prod listening on port 30000", "a", "b", "c", "c", "d"}; !slices.Equal(got, want) {
		t.Fatalf("wrote %q, want %q\n%s", got, want, fw.rec)
	}
	for _, l := range ls {
		if l.Copy != "prod@s1" {
			t.Fatalf("a line of another instance: %+v", l)
		}
	}
}

// Lines of several copies come out in time order, though each copy's
// arrive on its own stream; grep and level apply to streamed lines too.
func TestFollowMergesAndFilters(t *testing.T) {
	f := newTestFleet(t, 2)
	f.report([]string{"s1", "s2"}, "prod@s1")
	f.sims["s1"].Put("api", "alice--prod")
	f.sims["s2"].Put("api", "alice--backup")
	f.log("s1", "prod", "stderr", "x-start")
	f.log("s2", "backup", "stderr", "x-start")
	fw := follow(t, f, Query{Grep: "x", Level: observed.LogStderr})
	// Each copy's history comes once its stream is open.
	fw.until("the history", func() bool { return fw.rec.has("prod@s1", "x-start") && fw.rec.has("backup@s2", "x-start") })
	for i := 0; i < 10; i++ {
		server, inst := "s1", "prod"
		if i%2 == 1 {
			server, inst = "s2", "backup"
		}
		f.log(server, inst, "stderr", fmt.Sprintf("x%d", i))
		f.log(server, inst, "stdout", fmt.Sprintf("x%d out", i))
		f.log(server, inst, "stderr", fmt.Sprintf("y%d", i))
	}
	fw.until("ten lines", func() bool { ls, _ := fw.rec.snapshot(); return len(ls) >= 12 })
	ls, _ := fw.rec.snapshot()
	for i, l := range ls[2:] {
		if l.Message != fmt.Sprintf("x%d", i) || l.Level != observed.LogStderr {
			t.Fatalf("line %d: %+v\n%s", i, l, fw.rec)
		}
	}
	fw.once()
}

// A tenant removed while followed ends the follow, with a word.
func TestFollowEndsWhenTheTenantGoes(t *testing.T) {
	f := newTestFleet(t, 2)
	f.sims["s1"].Put("api", "alice--prod")
	fw := follow(t, f, Query{})
	fw.until("following", func() bool { return fw.rec.has("prod@s1", "alice--prod listening on port 30000") })
	if err := f.st.RemoveTenant(f.ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	var err error
	ended := false
	fw.until("the end", func() bool {
		select {
		case err = <-fw.done:
			ended = true
		default:
		}
		return ended
	})
	fw.done <- nil // for the cleanup
	if err != nil || !fw.rec.said("", "tenant alice not found: nothing more to follow") {
		t.Fatalf("Follow = %v\n%s", err, fw.rec)
	}
}

// A copy's queue holds at most MaxPerCopy lines, dropping the oldest; a
// new connection's history replaces one not yet taken, with what came
// after it.
func TestSourceQueueIsBounded(t *testing.T) {
	s := &source{opt: Options{MaxPerCopy: 5}.withDefaults(), notify: make(chan struct{}, 1)}
	for i := 0; i < 50; i++ {
		s.post(event{kind: evLine, entry: entry(int64(i), fmt.Sprint(i))})
	}
	evs, dropped := s.take()
	if len(evs) != 5 || dropped != 45 || evs[0].entry.Message != "45" {
		t.Fatalf("queued %d from %q, dropped %d", len(evs), evs[0].entry.Message, dropped)
	}
	s.post(event{kind: evLine, entry: entry(1, "before")})
	s.post(event{kind: evHistory, entries: []observed.LogEntry{entry(1, "h1")}})
	s.post(event{kind: evLine, entry: entry(2, "after h1")})
	s.post(event{kind: evLost})
	s.post(event{kind: evHistory, entries: []observed.LogEntry{entry(1, "h2")}})
	s.post(event{kind: evLine, entry: entry(3, "after h2")})
	evs, _ = s.take()
	var got []string
	for _, e := range evs {
		switch e.kind {
		case evHistory:
			got = append(got, "history "+e.entries[0].Message)
		case evLine:
			got = append(got, e.entry.Message)
		}
	}
	if want := []string{"before", "history h2", "after h2"}; !slices.Equal(got, want) || s.lines != 0 {
		t.Fatalf("queue %q, want %q", got, want)
	}
}

// An instance moved away and back: the old copy is read for its last
// lines, then let go; back on its first server it is followed again, and
// what that server kept of it before is not written again.
func TestFollowAMoveAndBack(t *testing.T) {
	f := newTestFleet(t, 3)
	f.report([]string{"s1", "s2", "s3"}, "prod@s1")
	f.sims["s1"].Put("api", "alice--prod")
	f.log("s1", "prod", "stdout", "first stay")
	fw := follow(t, f, Query{Instance: "prod"})
	fw.until("the history", func() bool { return fw.rec.has("prod@s1", "first stay") })
	// As the controller reports a move: the new copy serves.
	move := func(to string) {
		if _, err := f.st.MoveInstance(f.ctx, "alice:prod", to); err != nil {
			t.Fatal(err)
		}
		f.report([]string{"s1", "s2", "s3"}, "prod@"+to)
	}
	move("s3")
	fw.until("the old copy said", func() bool { return fw.rec.said("prod@s1", "an old copy: prod runs on s3: reading its last lines") })
	f.log("s1", "prod", "stdout", "last words")
	fw.until("the old copy's last words", func() bool { return fw.rec.has("prod@s1", "last words") })
	f.sims["s3"].Put("api", "alice--prod")
	fw.until("the new copy", func() bool { return fw.rec.has("prod@s3", "alice--prod listening on port 30000") })
	fw.clk.Advance(retireGrace) // the old copy is let go at the next poll
	polls := 0
	fw.until("a few polls", func() bool { polls++; return polls > 20 })
	move("s1")
	fw.until("back on s1", func() bool { return fw.rec.said("prod@s1", "a new copy: following it") })
	f.log("s1", "prod", "stdout", "second stay")
	fw.until("the second stay", func() bool { return fw.rec.has("prod@s1", "second stay") })
	ls, _ := fw.rec.snapshot()
	for _, l := range ls {
		if l.Message == "last words" && l.Gone != "an old copy: prod runs on s3" {
			t.Fatalf("the old copy's line is not marked: %+v", l)
		}
		if l.Message == "second stay" && l.Gone != "" {
			t.Fatalf("the copy back home is marked: %+v", l)
		}
	}
	fw.once()
}
