package leader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

// faulty is a real store whose lease writes and checks can be made to
// fail.
type faulty struct {
	*store.Store
	calls    atomic.Int64 // Check and AcquireLease calls begun
	inflight atomic.Int64 // and not yet returned
	mu       sync.Mutex
	acquire  error // AcquireLease fails with it
	check    error // Check fails with it
	reopened int
}

func (f *faulty) set(acquire, check error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acquire, f.check = acquire, check
}

func (f *faulty) begin() func() {
	f.calls.Add(1)
	f.inflight.Add(1)
	return func() { f.inflight.Add(-1) }
}

// settle waits (real time) until no call is in flight and none has begun
// for a moment: the goroutines a tick woke are done with the store.
func (f *faulty) settle() {
	for {
		n := f.calls.Load()
		time.Sleep(2 * time.Millisecond)
		if f.inflight.Load() == 0 && f.calls.Load() == n {
			return
		}
	}
}

func (f *faulty) AcquireLease(ctx context.Context, name, holder, dead string, ttl time.Duration) (slum.Lease, error) {
	defer f.begin()()
	f.mu.Lock()
	err := f.acquire
	f.mu.Unlock()
	if err != nil {
		return slum.Lease{}, err
	}
	return f.Store.AcquireLease(ctx, name, holder, dead, ttl)
}

func (f *faulty) Check(context.Context) error {
	defer f.begin()()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.check
}

func (f *faulty) Reopen(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reopened++
	f.check = nil
	return nil
}

var timing = Timing{TTL: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond}

func newStore(t *testing.T, clk *fakeclock.Clock) *faulty {
	t.Helper()
	eng, err := sqlite.OpenEngine(context.Background(), filepath.Join(t.TempDir(), "fleet.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return &faulty{Store: store.NewWithClock(eng, clk.Now)}
}

// term is one Lead call as the test sees it.
type term struct {
	lease slum.Lease
	ctx   context.Context
}

// run starts an elector whose terms are recorded; stop ends it.
func run(t *testing.T, st Store, clk *fakeclock.Clock, holder string, gone func(string) bool) (*Elector, chan term, func()) {
	t.Helper()
	if gone == nil {
		gone = func(string) bool { return false }
	}
	e, err := New(st, Config{Timing: timing, Holder: holder, Clock: clk, Gone: gone})
	if err != nil {
		t.Fatal(err)
	}
	terms := make(chan term, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.Run(ctx, Hooks{Lead: func(ctx context.Context, l slum.Lease) error {
			terms <- term{l, ctx}
			<-ctx.Done()
			return nil
		}})
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return e, terms, stop
}

// until advances the fake clock in small steps until cond holds, and
// returns how much fake time that took.
func until(t *testing.T, st *faulty, clk *fakeclock.Clock, what string, cond func() bool) time.Duration {
	t.Helper()
	var took time.Duration
	for i := 0; ; i++ {
		st.settle()
		if cond() {
			return took
		}
		if i > 2000 {
			t.Fatalf("%s: not after %s", what, took)
		}
		clk.Advance(step)
		took += step
	}
}

const step = 50 * time.Millisecond

func got(ch chan term) func() bool {
	return func() bool { return len(ch) > 0 }
}

func ended(ctx context.Context) func() bool { return func() bool { return ctx.Err() != nil } }

func TestOneLeadsTheOtherStandsByAndTakesOverOnRelease(t *testing.T) {
	clk := fakeclock.New(time.Unix(1_000_000, 0))
	st := newStore(t, clk)
	a, aTerms, stopA := run(t, st, clk, "h/1/a", nil)
	until(t, st, clk, "a leads", got(aTerms))
	first := <-aTerms
	b, bTerms, _ := run(t, st, clk, "h/2/b", nil)
	until(t, st, clk, "b stands by", func() bool { return strings.Contains(b.Status().Reason, "h/1/a leads") })
	if !a.Status().Leading || b.Status().Leading || len(bTerms) > 0 {
		t.Fatalf("a %+v, b %+v", a.Status(), b.Status())
	}
	// Renewals keep a's term past its lease.
	until(t, st, clk, "two leases' time", func() bool { return clk.Now().Sub(first.lease.ExpiresAt) > 2*timing.TTL })
	if first.ctx.Err() != nil || len(bTerms) > 0 {
		t.Fatalf("a's term ended (%v) or b led while a renewed", context.Cause(first.ctx))
	}
	// a stops, releasing the lease: b leads within a retry period.
	stopA()
	if took := until(t, st, clk, "b leads", got(bTerms)); took > timing.RetryPeriod {
		t.Fatalf("b took %s to lead after a released the lease", took)
	}
	if l := (<-bTerms).lease; l.Holder != "h/2/b" {
		t.Fatalf("b's lease %+v", l)
	}
}

// A leader whose renewals fail stops acting at the renew deadline, before
// its lease can be taken, and leads again by itself once they succeed.
func TestRenewDeadlineStopsActingBeforeTheLeaseLapses(t *testing.T) {
	clk := fakeclock.New(time.Unix(1_000_000, 0))
	st := newStore(t, clk)
	e, terms, _ := run(t, st, clk, "h/1/a", nil)
	until(t, st, clk, "leads", got(terms))
	tm := <-terms
	st.set(errors.New("database is locked"), nil)
	failedAt := clk.Now()
	until(t, st, clk, "the term ends", ended(tm.ctx))
	stoppedAfter := clk.Now().Sub(failedAt)
	if !errors.Is(context.Cause(tm.ctx), ErrLeaseLost) {
		t.Fatalf("cause %v", context.Cause(tm.ctx))
	}
	l, err := st.GetLease(context.Background(), slum.ControllerLease)
	if err != nil {
		t.Fatal(err)
	}
	if stoppedAfter > timing.RenewDeadline+step || !clk.Now().Before(l.ExpiresAt.Add(-timing.TTL/4)) {
		t.Fatalf("stopped acting %s after renewals began to fail, at %s; the lease runs until %s", stoppedAfter, clk.Now(), l.ExpiresAt)
	}
	if st := e.Status(); st.Leading || !st.DatabaseOK {
		t.Fatalf("status after the deadline %+v", st)
	}
	st.set(nil, nil)
	until(t, st, clk, "leads again", got(terms))
	if again := <-terms; again.lease.Epoch != tm.lease.Epoch || !e.Status().Leading {
		t.Fatalf("new term %+v after %+v", again.lease, tm.lease)
	}
}

// MayAct answers for the term led now and only until its renew deadline:
// the moment the clock passes it, before the term's context has ended (a
// process resumed after a pause), nothing may be sent.
func TestMayActOnlyWithinTheRenewDeadline(t *testing.T) {
	clk := fakeclock.New(time.Unix(1_000_000, 0))
	st := newStore(t, clk)
	idle, err := New(st, Config{Timing: timing, Holder: "h/2/b", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.MayAct(1); !errors.Is(err, ErrNotActing) {
		t.Fatalf("an elector that never led: %v", err)
	}
	e, terms, _ := run(t, st, clk, "h/1/a", nil)
	until(t, st, clk, "leads", got(terms))
	tm := <-terms
	if err := e.MayAct(tm.lease.Epoch); err != nil {
		t.Fatalf("leading: %v", err)
	}
	if err := e.MayAct(tm.lease.Epoch + 1); !errors.Is(err, ErrNotActing) {
		t.Fatalf("another epoch: %v", err)
	}
	st.set(errors.New("database is locked"), nil)
	st.settle()
	clk.Advance(timing.RenewDeadline + step)
	if err := e.MayAct(tm.lease.Epoch); !errors.Is(err, ErrNotActing) {
		t.Fatalf("past the renew deadline: %v", err)
	}
	until(t, st, clk, "the term ends", ended(tm.ctx))
	if err := e.MayAct(tm.lease.Epoch); !errors.Is(err, ErrNotActing) {
		t.Fatalf("after the term: %v", err)
	}
}

// A database that cannot be used ends the term at once; a replaced file is
// reopened before the next.
func TestDatabaseFaultStopsActingAtOnce(t *testing.T) {
	clk := fakeclock.New(time.Unix(1_000_000, 0))
	st := newStore(t, clk)
	e, terms, _ := run(t, st, clk, "h/1/a", nil)
	until(t, st, clk, "leads", got(terms))
	tm := <-terms
	for _, fault := range []error{
		fmt.Errorf("%w: fleet.db is read-only", store.ErrFault),
		fmt.Errorf("%w: fleet.db was replaced by another file", store.ErrMoved),
	} {
		st.set(nil, fault)
		if took := until(t, st, clk, "the term ends", ended(tm.ctx)); took > timing.RetryPeriod {
			t.Fatalf("%v: the term ended %s later", fault, took)
		}
		if !errors.Is(context.Cause(tm.ctx), ErrDatabase) {
			t.Fatalf("cause %v", context.Cause(tm.ctx))
		}
		if errors.Is(fault, store.ErrFault) {
			until(t, st, clk, "standby says why", func() bool { return !e.Status().DatabaseOK && strings.Contains(e.Status().Reason, "read-only") })
			st.set(nil, nil)
		}
		until(t, st, clk, "leads again", got(terms))
		tm = <-terms
	}
	if st.reopened != 1 {
		t.Fatalf("reopened %d times, want once (for the replaced file)", st.reopened)
	}
}

// A holder that is gone (killed, a zombie) is taken over at once, however
// long its lease has to run.
func TestGoneHolderIsTakenOverAtOnce(t *testing.T) {
	clk := fakeclock.New(time.Unix(1_000_000, 0))
	st := newStore(t, clk)
	if _, err := st.Store.AcquireLease(context.Background(), slum.ControllerLease, "h/9/dead", "", time.Hour); err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	_, terms, _ := run(t, st, clk, "h/1/a", func(h string) bool { asked.Add(1); return h == "h/9/dead" })
	start := clk.Now()
	select {
	case tm := <-terms:
		if tm.lease.Epoch != 2 || asked.Load() == 0 || clk.Now() != start {
			t.Fatalf("lease %+v, at %s after the start", tm.lease, clk.Now().Sub(start))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lease of a gone holder was not taken at once")
	}
}

func TestTimingValidate(t *testing.T) {
	for _, tc := range []struct {
		t  Timing
		ok bool
	}{
		{DefaultTiming(15 * time.Second), true},
		{DefaultTiming(time.Second), true},
		{Timing{TTL: time.Second, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond}, false},
		{Timing{TTL: time.Second, RenewDeadline: 500 * time.Millisecond, RetryPeriod: 500 * time.Millisecond}, false},
		{Timing{}, false},
	} {
		if err := tc.t.Validate(); (err == nil) != tc.ok || (err != nil && !errors.Is(err, slum.ErrInvalid)) {
			t.Errorf("%+v: %v", tc.t, err)
		}
	}
	if d := DefaultTiming(15 * time.Second); d.RenewDeadline != 10*time.Second || d.RetryPeriod != time.Second {
		t.Fatalf("default %+v", d)
	}
}

func TestParseState(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want byte
		ok   bool
	}{
		{"123 (slum) S 1 2 3", 'S', true},
		{"123 (slum run) Z 1 2 3", 'Z', true},
		{"123 (a) b) (c) R 1", 'R', true},
		{"123 (slum)", 0, false},
		{"garbage", 0, false},
	} {
		got, err := parseState([]byte(tc.stat))
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: %c %v", tc.stat, got, err)
		}
	}
}

func TestHolderGone(t *testing.T) {
	host, _ := os.Hostname()
	holder := func(pid int) string { return fmt.Sprintf("%s/%d/x", host, pid) }
	if HolderGone(Holder()) {
		t.Fatal("this process is gone?")
	}
	for _, h := range []string{"", "x", "otherhost/1/a", host + "/notapid/a"} {
		if HolderGone(h) {
			t.Fatalf("%q counted as gone", h)
		}
	}
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	if !HolderGone(holder(exited.Process.Pid)) {
		t.Fatal("an exited process of this host is not gone")
	}
	// Killed and not reaped: a zombie, which signal 0 counts alive.
	zombie := exec.Command("sleep", "60")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	if HolderGone(holder(zombie.Process.Pid)) {
		t.Fatal("a running process is gone")
	}
	if err := zombie.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for state, _ := procState(zombie.Process.Pid); state != 'Z'; state, _ = procState(zombie.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("no zombie: state %c", state)
		}
		time.Sleep(time.Millisecond)
	}
	if syscall.Kill(zombie.Process.Pid, 0) != nil {
		t.Fatal("signal 0 fails on a zombie: the test proves nothing")
	}
	if !HolderGone(holder(zombie.Process.Pid)) {
		t.Fatal("a zombie is not gone")
	}
	_ = zombie.Wait()
}
