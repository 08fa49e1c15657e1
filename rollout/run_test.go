package rollout

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// controller stands in for 'slum run' over a real store: each tenant is
// served by its first copy (by id) not being restarted, every copy runs
// healthy.
type controller struct {
	*store.Store
	mu      sync.Mutex
	serving map[string][]string // tenant: the serving copy each time it was asked
}

func (c *controller) TenantStatus(ctx context.Context, id string) (slum.TenantStatus, error) {
	snap, err := c.Snapshot(ctx)
	if err != nil {
		return slum.TenantStatus{}, err
	}
	ts := slum.TenantStatus{TenantID: id}
	for _, in := range snap.Instances {
		if in.TenantID == id && !slices.Contains(snap.Restarting, in.Key()) {
			ts.Serving = []slum.CopyRef{{Instance: in.ID, Server: in.ServerID}}
			break
		}
	}
	if ts.Serving == nil { // the last copy serves while it restarts
		for _, in := range snap.Instances {
			if in.TenantID == id {
				ts.Serving = []slum.CopyRef{{Instance: in.ID, Server: in.ServerID}}
				break
			}
		}
	}
	c.mu.Lock()
	c.serving[id] = append(c.serving[id], ts.Serving[0].Instance)
	c.mu.Unlock()
	return ts, nil
}

func (c *controller) ListTenantStatus(ctx context.Context) ([]slum.TenantStatus, error) {
	ts := []slum.TenantStatus{}
	for _, t := range []string{"alice", "bob", "carol"} {
		s, err := c.TenantStatus(ctx, t)
		if err != nil {
			return nil, err
		}
		ts = append(ts, s)
	}
	return ts, nil
}

func (c *controller) InstanceStatus(ctx context.Context, key slum.InstanceKey) (slum.InstanceStatus, error) {
	in, err := c.GetInstance(ctx, key)
	return slum.InstanceStatus{TenantID: in.TenantID, InstanceID: in.ID, ServerID: in.ServerID, Phase: slum.PhaseRunning, Health: slum.InstanceHealthy}, err
}

// fakeTenement records restarts; a copy in never stays unhealthy, one in
// block waits for its context.
type fakeTenement struct {
	mu       sync.Mutex
	restarts []string
	never    map[string]bool
	block    map[string]bool
	serving  func(tenant string) string // who serves when a copy restarts
	during   []string                   // "copy restarted while serving:copy"
}

func (f *fakeTenement) dial(slum.Server) (Tenement, error) { return f, nil }

func (f *fakeTenement) Restart(ctx context.Context, process, id string) error {
	tenant, inst, _ := strings.Cut(id, "--")
	f.mu.Lock()
	f.restarts = append(f.restarts, tenant+":"+inst)
	f.during = append(f.during, tenant+":"+inst+" while "+f.serving(tenant)+" served")
	blocked := f.block[tenant+":"+inst]
	f.mu.Unlock()
	if blocked {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *fakeTenement) Health(_ context.Context, process, id string) (string, error) {
	tenant, inst, _ := strings.Cut(id, "--")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.never[tenant+":"+inst] {
		return "unhealthy", nil
	}
	return "healthy", nil
}

func (f *fakeTenement) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.restarts)
}

type testFleet struct {
	st     *controller
	tn     *fakeTenement
	offset atomic.Int64 // the store's clock, ahead of the real one
}

func newTestFleet(t *testing.T) *testFleet {
	t.Helper()
	ctx := context.Background()
	tf := &testFleet{tn: &fakeTenement{never: map[string]bool{}, block: map[string]bool{}}}
	e, err := sqlite.OpenEngine(ctx, filepath.Join(t.TempDir(), "slum.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	s := store.NewWithClock(e, func() time.Time { return time.Now().Add(time.Duration(tf.offset.Load())) })
	t.Cleanup(func() { s.Close() })
	tf.st = &controller{Store: s, serving: map[string][]string{}}
	for i := 1; i <= 3; i++ {
		if _, err := s.AddServer(ctx, slum.Server{ID: fmt.Sprintf("s%d", i), URL: fmt.Sprintf("http://127.0.0.1:%d", 9000+i), Region: "eu", CapacityMB: 4096, Token: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tn := range []string{"alice", "bob", "carol"} {
		if _, _, err := s.AddTenant(ctx, slum.Tenant{ID: tn, Domain: tn + ".example.com", Region: "eu"}, slum.InstanceSpec{ID: "a", Process: "api"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SpawnInstance(ctx, slum.InstanceSpec{TenantID: "alice", ID: "b", Process: "api"}); err != nil {
		t.Fatal(err)
	}
	tf.tn.serving = func(tenant string) string {
		ts, _ := tf.st.TenantStatus(ctx, tenant)
		return tenant + ":" + ts.Serving[0].Instance
	}
	return tf
}

func (tf *testFleet) service(ctx context.Context) *Service {
	return NewService(ctx, tf.st, tf.tn.dial, Config{Poll: time.Millisecond, Drain: -1, ServingTimeout: time.Second})
}

// wait follows a rollout until it finishes.
func wait(t *testing.T, s *Service, id int64) slum.Rollout {
	t.Helper()
	s.Wait()
	r, err := s.GetRollout(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRolloutRestartsInOrderWithServingMovedOff(t *testing.T) {
	tf := newTestFleet(t)
	s := tf.service(context.Background())
	r, err := s.Restart(context.Background(), slum.RestartSpec{All: true})
	if err != nil {
		t.Fatal(err)
	}
	r = wait(t, s, r.ID)
	if r.State != slum.RolloutDone || r.Counts()[slum.StepDone] != 4 {
		t.Fatalf("rollout %+v", r)
	}
	if got := tf.tn.got(); !slices.Equal(got, []string{"alice:b", "alice:a", "bob:a", "carol:a"}) {
		t.Fatalf("restarted %v", got)
	}
	// alice's serving copy a was restarted while b served; the spare
	// first, while a served. Single copies restart serving.
	want := []string{"alice:b while alice:a served", "alice:a while alice:b served", "bob:a while bob:a served", "carol:a while carol:a served"}
	if !slices.Equal(tf.tn.during, want) {
		t.Fatalf("during restarts: %v", tf.tn.during)
	}
	evs, _ := tf.st.RecentEvents(context.Background(), 20)
	var reasons []string
	for _, e := range evs {
		reasons = append(reasons, string(e.Reason))
	}
	if slices.Index(reasons, string(slum.ReasonRolloutDone)) < 0 || slices.Index(reasons, string(slum.ReasonRestarted)) < 0 {
		t.Fatalf("events %v", reasons)
	}
}

// What Restart returns is the caller's: reading its steps while the
// rollout runs (as the API encodes them) races with nothing (-race).
func TestRestartReturnsStepsOfItsOwn(t *testing.T) {
	tf := newTestFleet(t)
	s := tf.service(context.Background())
	r, err := s.Restart(context.Background(), slum.RestartSpec{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		for _, st := range r.Steps {
			if st.State != slum.StepPending {
				t.Fatalf("the returned rollout's step %s changed under its caller: %s", st.Instance, st.State)
			}
		}
	}
	if r = wait(t, s, r.ID); r.State != slum.RolloutDone {
		t.Fatalf("rollout %+v", r)
	}
}

func TestRolloutHaltsOnTheFirstCopyNotHealthy(t *testing.T) {
	tf := newTestFleet(t)
	tf.tn.never["bob:a"] = true
	s := tf.service(context.Background())
	r, err := s.Restart(context.Background(), slum.RestartSpec{All: true, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r = wait(t, s, r.ID)
	if r.State != slum.RolloutFailed || !strings.Contains(r.Message, "bob:a") || !strings.Contains(r.Message, "1 copies left untouched") {
		t.Fatalf("rollout %s: %q", r.State, r.Message)
	}
	if got := tf.tn.got(); slices.Contains(got, "carol:a") {
		t.Fatalf("carol was restarted after bob failed: %v", got)
	}
	if st := r.Steps[3]; st.Instance != "carol:a" || st.State != slum.StepPending {
		t.Fatalf("carol's step %+v", st)
	}
	if _, err := s.ResumeRollout(context.Background(), r.ID); !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("resume of a failed rollout: %v", err)
	}
}

func TestRolloutResumesAfterAnInterruption(t *testing.T) {
	tf := newTestFleet(t)
	tf.tn.block["bob:a"] = true
	ctx, cancel := context.WithCancel(context.Background())
	s := tf.service(ctx)
	r, err := s.Restart(ctx, slum.RestartSpec{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for !slices.Contains(tf.tn.got(), "bob:a") {
		time.Sleep(time.Millisecond)
	}
	cancel() // the CLI is interrupted mid-restart of bob:a
	s.Wait()
	r, _ = tf.st.GetRollout(context.Background(), r.ID)
	// Let go unfinished: bob:a pending again (no longer avoided for
	// serving), no runner, so it may be resumed at once.
	if r.State != slum.RolloutRunning || r.Steps[2].State != slum.StepPending || r.Runner != "" {
		t.Fatalf("after the interruption %+v", r)
	}
	if snap, _ := tf.st.Snapshot(context.Background()); len(snap.Restarting) != 0 {
		t.Fatalf("copies still marked restarting: %v", snap.Restarting)
	}

	tf.tn.block["bob:a"] = false
	s2 := tf.service(context.Background())
	if _, err := s2.Restart(context.Background(), slum.RestartSpec{All: true}); !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("a second rollout while one is unfinished: %v", err)
	}
	if _, err := s2.ResumeRollout(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	r = wait(t, s2, r.ID)
	if r.State != slum.RolloutDone {
		t.Fatalf("resumed %+v", r)
	}
	// Done copies are not restarted again; the interrupted one is.
	if got := tf.tn.got(); !slices.Equal(got, []string{"alice:b", "alice:a", "bob:a", "bob:a", "carol:a"}) {
		t.Fatalf("restarted %v", got)
	}
}

func TestRolloutSkipsCopiesGoneByTheirTurn(t *testing.T) {
	tf := newTestFleet(t)
	ctx := context.Background()
	tf.tn.block["alice:b"] = true
	bctx, cancel := context.WithCancel(ctx)
	s := tf.service(bctx)
	r, err := s.Restart(ctx, slum.RestartSpec{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for !slices.Contains(tf.tn.got(), "alice:b") {
		time.Sleep(time.Millisecond)
	}
	cancel()
	s.Wait()
	// A runner that died (no release) is resumed once its heartbeat is
	// stale.
	claimed, _ := tf.st.ClaimRollout(ctx, r.ID, "dead", slum.RolloutStale)
	if claimed.Runner != "dead" {
		t.Fatalf("claim %+v", claimed)
	}
	s3 := tf.service(ctx)
	if _, err := s3.ResumeRollout(ctx, r.ID); !errors.Is(err, slum.ErrConflict) {
		t.Fatalf("resume while the heartbeat is fresh: %v", err)
	}
	if err := tf.st.RemoveTenant(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	tf.tn.block["alice:b"] = false
	tf.offset.Store(int64(slum.RolloutStale + time.Second))
	s2 := tf.service(ctx)
	if _, err := s2.ResumeRollout(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	r = wait(t, s2, r.ID)
	if r.State != slum.RolloutDone || r.Steps[3].State != slum.StepSkipped || r.Steps[3].Message != "removed" {
		t.Fatalf("rollout %+v", r)
	}
}

func TestRolloutParallelNeverTwoOfATenant(t *testing.T) {
	tf := newTestFleet(t)
	s := tf.service(context.Background())
	r, err := s.Restart(context.Background(), slum.RestartSpec{All: true, Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	r = wait(t, s, r.ID)
	if r.State != slum.RolloutDone {
		t.Fatalf("rollout %+v", r)
	}
	got := tf.tn.got()
	if slices.Index(got, "alice:b") > slices.Index(got, "alice:a") {
		t.Fatalf("alice's spare after her serving copy: %v", got)
	}
	for _, d := range tf.tn.during {
		if strings.HasPrefix(d, "alice:a ") && d != "alice:a while alice:b served" {
			t.Fatalf("alice's serving copy restarted serving: %v", tf.tn.during)
		}
	}
}
