package api

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/api/wire"
)

// objectsOf is every object of a view as JSON, by kind:id.
func objectsOf(v *view) map[string]string {
	out := map[string]string{}
	v.each(nil, func(kind wire.ObjectKind, id string, obj []byte) { out[string(kind)+":"+id] = string(obj) })
	return out
}

// sameObjects fails unless the two views hold the same objects.
func sameObjects(t *testing.T, step string, got, want *view) {
	t.Helper()
	g, w := objectsOf(got), objectsOf(want)
	for k, wv := range w {
		if gv, ok := g[k]; !ok {
			t.Errorf("%s: %s missing", step, k)
		} else if gv != wv {
			t.Errorf("%s: %s is\n%s\nwant\n%s", step, k, gv, wv)
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			t.Errorf("%s: %s should be gone", step, k)
		}
	}
}

// pollOnce runs one poll of w, counting whole reads.
func pollOnce(t *testing.T, ctx context.Context, w *watcher, st *watchState) {
	t.Helper()
	if err := w.poll(ctx, st); err != nil {
		t.Fatal(err)
	}
}

// A watch kept up to date from the change log holds what a whole read
// shows, after every kind of write, and publishes exactly the difference.
func TestWatchFollowsTheChangeLogLikeAWholeRead(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	ctx := a.ctx
	st := a.store
	w := newWatcher(st, Config{}.withDefaults())
	ws := &watchState{rev: -1, srev: -1, tail: newNode(0)}
	pollOnce(t, ctx, w, ws)
	if ws.fleet == nil || ws.view == nil {
		t.Fatal("no fleet after the first poll")
	}
	lease, err := st.AcquireLease(ctx, "controller", "test", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Millisecond)
	report := func(r slum.Report) error { return st.WriteReport(ctx, lease.Fence(), r) }
	steps := []struct {
		name  string
		write func() error
	}{
		{"add tenant bob on s2", func() error {
			_, _, err := st.AddTenant(ctx, slum.Tenant{ID: "bob", Domain: "bob.example.com"}, slum.InstanceSpec{ID: "prod", Process: "api", ServerID: "s2"})
			return err
		}},
		{"the controller reports", func() error {
			return report(slum.Report{
				Servers: []slum.ServerStatus{{ServerID: "s1", Health: slum.HealthOnline, UpdatedAt: now}, {ServerID: "s2", Health: slum.HealthOnline, UpdatedAt: now}},
				Tenants: []slum.TenantStatus{{TenantID: "alice", Serving: []slum.CopyRef{{Instance: "prod", Server: "s1"}}, UpdatedAt: now},
					{TenantID: "bob", Serving: []slum.CopyRef{{Instance: "prod", Server: "s2"}}, UpdatedAt: now}},
				Instances: []slum.InstanceStatus{{TenantID: "alice", InstanceID: "prod", ServerID: "s1", Phase: slum.PhaseRunning, UpdatedAt: now},
					{TenantID: "bob", InstanceID: "prod", ServerID: "s2", Phase: slum.PhaseRunning, UpdatedAt: now}},
			})
		}},
		{"alice moves to s2", func() error { _, err := st.MoveInstance(ctx, "alice:prod", "s2"); return err }},
		{"s2 dies: bob's route loses its backend", func() error {
			return report(slum.Report{Servers: []slum.ServerStatus{{ServerID: "s2", Health: slum.HealthDead, UpdatedAt: now}}})
		}},
		{"s1's domain changes: alice's backend host does", func() error {
			_, err := st.UpdateServer(ctx, "s1", slum.ServerUpdate{Domain: ptr("s1.example.net")})
			return err
		}},
		{"bob and alice swap domains", func() error {
			if _, err := st.UpdateTenant(ctx, "alice", slum.TenantUpdate{Domain: ptr("alice.example.org")}); err != nil {
				return err
			}
			if _, err := st.UpdateTenant(ctx, "bob", slum.TenantUpdate{Domain: ptr("alice.example.com")}); err != nil {
				return err
			}
			_, err := st.UpdateTenant(ctx, "alice", slum.TenantUpdate{Domain: ptr("bob.example.com")})
			return err
		}},
		{"settings", func() error {
			set, err := st.Settings(ctx)
			if err != nil {
				return err
			}
			set.DeadAfter++
			_, err = st.SetSettings(ctx, set)
			return err
		}},
		{"cordon s1", func() error { _, err := st.SetServerState(ctx, "s1", slum.ServerCordoned); return err }},
		{"bob leaves", func() error { return st.RemoveTenant(ctx, "bob") }},
		{"the controller drops bob's status and sees alice's copy fail", func() error {
			return report(slum.Report{DropTenants: []string{"bob"}, DropInstances: []slum.InstanceKey{"bob:prod"},
				Instances: []slum.InstanceStatus{{TenantID: "alice", InstanceID: "prod", ServerID: "s2", Phase: slum.PhaseFailed, UpdatedAt: now}}})
		}},
	}
	for _, s := range steps {
		stepMatchesWholeRead(t, ctx, w, ws, s.name, s.write)
	}
}

// stepMatchesWholeRead makes one write, polls, and checks that the watch
// holds what a whole read shows and that the batch it published is the
// difference, no more, no less.
func stepMatchesWholeRead(t *testing.T, ctx context.Context, w *watcher, ws *watchState, name string, write func() error) {
	t.Helper()
	before := ws.tail.seq
	prev := objectsOf(ws.view)
	if err := write(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	pollOnce(t, ctx, w, ws)
	f, _, err := w.readAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	holds, _ := w.st.OpenHolds(ctx)
	whole, _ := makeView(nil, f, holds, nil)
	sameObjects(t, name, ws.view, whole)

	want := map[string]string{}
	cur := objectsOf(whole)
	for k, v := range cur {
		if prev[k] != v {
			want[k] = "put"
		}
	}
	for k := range prev {
		if _, ok := cur[k]; !ok {
			want[k] = "delete"
		}
	}
	got := map[string]string{}
	if ws.tail.seq != before {
		for _, c := range ws.tail.batch.Changes {
			got[string(c.Kind)+":"+c.ID] = string(c.Op)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: published %v, want %v", name, got, want)
	}
	if len(want) == 0 {
		t.Errorf("%s: changed nothing the watch shows: a step that tests nothing", name)
	}
}

// The whole fleet is read once; after that only when the change log no
// longer reaches back to the watch's last poll.
func TestWatchReadsTheWholeFleetOnlyWhenTheLogCannotTell(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	ctx := a.ctx
	w := newWatcher(a.store, Config{}.withDefaults())
	ws := &watchState{rev: -1, srev: -1, tail: newNode(0)}
	pollOnce(t, ctx, w, ws)
	first := ws.fleet
	if _, err := a.store.SetServerState(ctx, "s2", slum.ServerCordoned); err != nil {
		t.Fatal(err)
	}
	pollOnce(t, ctx, w, ws)
	if ws.fleet != first {
		t.Fatal("one change read the whole fleet again")
	}
	if got := objectIDs(ws.tail.batch.Changes); got != "server:s2" {
		t.Fatalf("batch: %s", got)
	}
	// A position the log no longer has (as after 20,000 writes between
	// two polls): the whole fleet is read, and the batch is still only
	// what changed.
	ws.seq = -10
	if _, err := a.store.SetServerState(ctx, "s2", slum.ServerActive); err != nil {
		t.Fatal(err)
	}
	pollOnce(t, ctx, w, ws)
	if ws.fleet == first {
		t.Fatal("the fleet was not read again")
	}
	if got := objectIDs(ws.tail.batch.Changes); got != "server:s2" {
		t.Fatalf("batch after a whole read: %s", got)
	}
	// The controller's status goes unlogged while no watcher keeps the log
	// (here: the watcher stalled past its time): the watcher that comes
	// back late reads the whole fleet, and so misses nothing.
	second := ws.fleet
	raw, err := sql.Open("sqlite3", "file:"+a.store.Where()+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `UPDATE change_log_readers SET until_ms = 0`); err != nil {
		t.Fatal(err)
	}
	lease, err := a.store.AcquireLease(ctx, "controller", "test", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.store.WriteReport(ctx, lease.Fence(), slum.Report{Servers: []slum.ServerStatus{
		{ServerID: "s1", Health: slum.HealthDead, UpdatedAt: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	ws.logUntil = time.Now().Add(-time.Second).UnixMilli()
	pollOnce(t, ctx, w, ws)
	if ws.fleet == second {
		t.Fatal("a watcher late to keep the log followed it")
	}
	if got := objectIDs(ws.tail.batch.Changes); !strings.Contains(got, "server:s1") {
		t.Fatalf("the status written while nothing was logged is missing: %s", got)
	}
	if time.Until(time.UnixMilli(ws.logUntil)) < changeLogRenew {
		t.Fatalf("the log is kept only until %v", time.UnixMilli(ws.logUntil))
	}
}

// A reset renders its view after the watcher has moved on: the view it
// holds does not change under it.
func TestResetKeepsItsViewWhileTheWatchMovesOn(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	ctx := a.ctx
	w := newWatcher(a.store, Config{}.withDefaults())
	ws := &watchState{rev: -1, srev: -1, tail: newNode(0)}
	pollOnce(t, ctx, w, ws)
	sub := w.answer(ws, subscribeReq{})
	if sub.reset == nil {
		t.Fatal("no reset")
	}
	if _, err := a.store.UpdateTenant(ctx, "alice", slum.TenantUpdate{Region: ptr("moved-on")}); err != nil {
		t.Fatal(err)
	}
	pollOnce(t, ctx, w, ws)
	if !strings.Contains(string(ws.tail.frame), "moved-on") {
		t.Fatal("the change was not published")
	}
	if frame := string(sub.reset.frame(nil)); strings.Contains(frame, "moved-on") || !strings.Contains(frame, `"alice"`) {
		t.Fatalf("the reset shows a later change: %s", frame)
	}
	// The next reset shows it, and the one after the next change too.
	if frame := string(w.answer(ws, subscribeReq{}).reset.frame(nil)); !strings.Contains(frame, "moved-on") {
		t.Fatal("a later reset misses the change")
	}
}

// Streams that watch the same kinds share one rendering of each message.
func TestStreamsOfTheSameKindsShareTheirMessages(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	ctx := a.ctx
	w := newWatcher(a.store, Config{}.withDefaults())
	ws := &watchState{rev: -1, srev: -1, tail: newNode(0)}
	pollOnce(t, ctx, w, ws)
	if _, err := a.store.UpdateTenant(ctx, "alice", slum.TenantUpdate{Domain: ptr("alice.example.org")}); err != nil {
		t.Fatal(err)
	}
	pollOnce(t, ctx, w, ws)
	routesOnly := func() map[wire.ObjectKind]bool { return map[wire.ObjectKind]bool{wire.ObjRoute: true} }
	n := ws.tail
	f1, f2 := frameFor(w.stream, n, routesOnly()), frameFor(w.stream, n, routesOnly())
	if &f1[0] != &f2[0] {
		t.Fatal("two streams of routes rendered the same batch twice")
	}
	if s := string(f1); !strings.Contains(s, `"kind":"route"`) || strings.Contains(s, `"kind":"tenant"`) {
		t.Fatalf("a batch of routes only: %s", s)
	}
	if f3 := frameFor(w.stream, n, map[wire.ObjectKind]bool{wire.ObjTenant: true}); !strings.Contains(string(f3), `"kind":"tenant"`) || strings.Contains(string(f3), `"kind":"route"`) {
		t.Fatalf("a batch of tenants only: %s", f3)
	}
	r := w.answer(ws, subscribeReq{}).reset
	r1, r2 := r.frame(routesOnly()), r.frame(routesOnly())
	if &r1[0] != &r2[0] || strings.Contains(string(r1), `"kind":"tenant"`) {
		t.Fatal("two streams of routes rendered the same reset twice")
	}
	if all1, all2 := r.frame(nil), r.frame(nil); &all1[0] != &all2[0] || !strings.Contains(string(all1), `"kind":"tenant"`) {
		t.Fatal("the whole reset was rendered twice")
	}
}

// A change to the settings alone is published, even by a writer that
// moved no revision the watch reads (the change log is what says so).
func TestWatchPublishesASettingsChangeAlone(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	ctx := a.ctx
	w := newWatcher(a.store, Config{}.withDefaults())
	ws := &watchState{rev: -1, srev: -1, tail: newNode(0)}
	pollOnce(t, ctx, w, ws)
	set, err := a.store.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	set.DeadAfter++
	if _, err := a.store.SetSettings(ctx, set); err != nil {
		t.Fatal(err)
	}
	// As if the write had not moved the revision: only the log tells.
	if ws.rev, err = a.store.Revision(ctx); err != nil {
		t.Fatal(err)
	}
	before := ws.tail.seq
	pollOnce(t, ctx, w, ws)
	if ws.tail.seq == before || objectIDs(ws.tail.batch.Changes) != "settings:fleet" {
		t.Fatalf("a settings change was not published (batch %d, was %d)", ws.tail.seq, before)
	}
	if d := ws.fleet.apply(&slum.Changed{Settings: &set}); d.empty() {
		t.Fatal("a settings change makes nothing dirty")
	}
}

// A poll that fails after reading new events leaves them for the next
// poll, which publishes them.
func TestWatchKeepsEventsAcrossAFailedPoll(t *testing.T) {
	a := newTestAPI(t, Config{})
	a.seed()
	ctx := a.ctx
	w := newWatcher(a.store, Config{}.withDefaults())
	ws := &watchState{rev: -1, srev: -1, tail: newNode(0)}
	pollOnce(t, ctx, w, ws)
	lease, err := a.store.AcquireLease(ctx, "controller", "test", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.store.WriteReport(ctx, lease.Fence(), slum.Report{
		Events: []slum.Event{{At: time.Now(), Object: "fleet", Reason: slum.ReasonSpawned, Message: "kept"}}}); err != nil {
		t.Fatal(err)
	}
	// A change log entry the watch cannot read makes the poll fail after
	// it read the event.
	raw, err := sql.Open("sqlite3", "file:"+a.store.Where()+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `INSERT INTO change_log (kind, key) VALUES ('instance', 'not a key')`); err != nil {
		t.Fatal(err)
	}
	if err := w.poll(ctx, ws); err == nil {
		t.Fatal("a poll over an unreadable change log entry succeeded")
	}
	if _, err := raw.ExecContext(ctx, `DELETE FROM change_log WHERE key = 'not a key'`); err != nil {
		t.Fatal(err)
	}
	before := ws.tail.seq
	pollOnce(t, ctx, w, ws) // the log has a gap now: a whole read
	if ws.tail.seq == before || len(ws.tail.batch.Events) != 1 || ws.tail.batch.Events[0].Message != "kept" {
		t.Fatalf("the event read by the failed poll was lost: %+v", ws.tail.batch.Events)
	}
}
