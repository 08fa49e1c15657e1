package logs

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/observed/sim"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// testFleet is a fleet database whose servers are simulated tenement
// servers, with tenant alice: prod on s1, backup on s2.
type testFleet struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	sims  map[string]*sim.Server
	lease slum.Lease
}

func newTestFleet(t *testing.T, servers int) *testFleet {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "slum.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &testFleet{t: t, ctx: ctx, st: st, sims: map[string]*sim.Server{}}
	for i := 1; i <= servers; i++ {
		id := fmt.Sprintf("s%d", i)
		s := sim.New(sim.Config{Token: "tok-" + id, Processes: map[string]sim.Process{"api": {}}, Keepalive: 50 * time.Millisecond})
		u, err := s.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		f.sims[id] = s
		if _, err := st.AddServer(ctx, slum.Server{ID: id, URL: u, CapacityMB: 1000, Token: "tok-" + id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := st.AddTenant(ctx, slum.Tenant{ID: "alice", Domain: "alice.example.com"},
		slum.InstanceSpec{ID: "prod", Process: "api", ServerID: "s1"}, slum.InstanceSpec{ID: "backup", Process: "api", ServerID: "s2"}); err != nil {
		t.Fatal(err)
	}
	if f.lease, err = st.AcquireLease(ctx, "controller", "test", "", time.Hour); err != nil {
		t.Fatal(err)
	}
	return f
}

// report writes the controller's word: each server's health ("s1=dead";
// online when not said) and alice's serving copies.
func (f *testFleet) report(health []string, serving ...string) {
	f.t.Helper()
	now := time.Now()
	var r slum.Report
	for _, h := range health {
		id, word, _ := strings.Cut(h, "=")
		if word == "" {
			word = string(slum.HealthOnline)
		}
		r.Servers = append(r.Servers, slum.ServerStatus{ServerID: id, Health: slum.Health(word), UpdatedAt: now})
	}
	ts := slum.TenantStatus{TenantID: "alice", ChangedAt: now, UpdatedAt: now}
	for _, c := range serving {
		i, s, _ := strings.Cut(c, "@")
		ts.Serving = append(ts.Serving, slum.CopyRef{Instance: i, Server: s})
	}
	r.Tenants = []slum.TenantStatus{ts}
	if err := f.st.WriteReport(f.ctx, f.lease.Fence(), r); err != nil {
		f.t.Fatal(err)
	}
}

// failover moves alice's instance to server to, as the controller does.
func (f *testFleet) failover(instance, to string) {
	f.t.Helper()
	in, err := f.st.GetInstance(f.ctx, slum.KeyOf("alice", instance))
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.st.Reschedule(f.ctx, f.lease.Fence(), []slum.Reschedule{{TenantID: "alice", InstanceID: instance,
		From: in.ServerID, To: to, Generation: in.Generation, Reason: "test"}}); err != nil {
		f.t.Fatal(err)
	}
}

// log has the instance of alice on server print lines, a millisecond
// apart so that their order is their times'.
func (f *testFleet) log(server, instance, level string, msgs ...string) {
	for _, m := range msgs {
		f.sims[server].Log("api", "alice--"+instance, level, m)
		time.Sleep(2 * time.Millisecond)
	}
}

// record is an Output safe for a test to read while a Follow writes.
type record struct {
	mu      sync.Mutex
	lines   []Line
	notices []Notice
}

func (r *record) output() Output {
	return Output{
		Line:   func(l Line) error { r.mu.Lock(); r.lines = append(r.lines, l); r.mu.Unlock(); return nil },
		Notice: func(n Notice) error { r.mu.Lock(); r.notices = append(r.notices, n); r.mu.Unlock(); return nil },
	}
}

func (r *record) snapshot() ([]Line, []Notice) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Line{}, r.lines...), append([]Notice{}, r.notices...)
}

// has reports whether a line of copy with message m was written.
func (r *record) has(copy, m string) bool {
	ls, _ := r.snapshot()
	for _, l := range ls {
		if l.Copy == copy && l.Message == m {
			return true
		}
	}
	return false
}

// said reports whether a notice about copy contains text.
func (r *record) said(copy, text string) bool {
	_, ns := r.snapshot()
	for _, n := range ns {
		if n.Copy == copy && strings.Contains(n.Message, text) {
			return true
		}
	}
	return false
}

func (r *record) String() string {
	ls, ns := r.snapshot()
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintf(&b, "notice %s\n", n)
	}
	for _, l := range ls {
		fmt.Fprintf(&b, "%s %s %s %q %s\n", l.Time.Format("15:04:05.000"), l.Copy, l.Level, l.Message, l.Gone)
	}
	return b.String()
}
