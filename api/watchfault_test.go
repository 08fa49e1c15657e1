package api

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/sqlite"
	"github.com/slum-fleet/slum/store"
)

func TestPollFaults(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	errGone, errFull := errors.New("file gone"), errors.New("disk full")
	var f pollFaults
	steps := []struct {
		at   time.Duration
		err  error // nil: the poll succeeded
		tell bool  // a failure is logged; a success after failures ends the run
		wait time.Duration
	}{
		{0, nil, false, 10 * time.Millisecond},
		{1 * time.Second, errGone, true, 20 * time.Millisecond},
		{2 * time.Second, errGone, false, 40 * time.Millisecond},
		{3 * time.Second, errGone, false, 80 * time.Millisecond},
		{4 * time.Second, errFull, true, 160 * time.Millisecond},
		{5 * time.Second, errFull, false, 320 * time.Millisecond},
		{6 * time.Second, errFull, false, 640 * time.Millisecond},
		{7 * time.Second, errFull, false, time.Second},
		{8 * time.Second, errFull, false, time.Second},
		{64 * time.Second, errFull, true, time.Second}, // a minute after the last told
		{65 * time.Second, nil, true, 10 * time.Millisecond},
		{66 * time.Second, nil, false, 10 * time.Millisecond},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		var tell bool
		if s.err != nil {
			tell = f.fail(now, s.err)
		} else {
			var d time.Duration
			d, tell = f.recover(now)
			if tell && d != 64*time.Second {
				t.Errorf("step %d: the run lasted %s, want 64s (from the first failure)", i, d)
			}
		}
		if tell != s.tell {
			t.Errorf("step %d (%v at %s): tell %v, want %v", i, s.err, s.at, tell, s.tell)
		}
		if got := f.wait(10 * time.Millisecond); got != s.wait {
			t.Errorf("step %d: next poll in %s, want %s", i, got, s.wait)
		}
	}
	if got := f.wait(5 * time.Second); got != 5*time.Second {
		t.Errorf("a watch slower than the backoff's bound waits %s, want its own 5s", got)
	}
}

// failingChangeLog is a store whose change log cannot be kept (its
// database file is gone, say) while err is set; calls counts the watch's
// polls.
type failingChangeLog struct {
	*store.Store
	err   atomic.Pointer[error]
	calls atomic.Int64
}

func (f *failingChangeLog) KeepChangeLog(ctx context.Context, d time.Duration, until int64) (int64, bool, error) {
	if err := f.err.Load(); err != nil {
		f.calls.Add(1) // the poll ends here
		return 0, false, *err
	}
	return f.Store.KeepChangeLog(ctx, d, until)
}

// Revision counts the polls that get past the change log.
func (f *failingChangeLog) Revision(ctx context.Context) (int64, error) {
	f.calls.Add(1)
	return f.Store.Revision(ctx)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) count(s string) int { return strings.Count(l.String(), s) }

// While the watch cannot read the fleet it polls less often and logs the
// fault once (not every 10 ms), and says when it reads the fleet again.
func TestWatchBacksOffWhileTheFleetCannotBeRead(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "slum.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fs := &failingChangeLog{Store: st}
	gone := errors.New("keep the change log: the file was deleted; nothing was written")
	fs.err.Store(&gone)
	clk := fakeclock.New(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
	var logs lockedBuffer
	a := New(fs, Config{Clock: clk, Log: slog.New(slog.NewTextHandler(&logs, nil)), WatchEvery: 10 * time.Millisecond, Restarts: noRestarts{}})
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(5 * time.Second); fs.calls.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the watch never polled")
		}
	}
	time.Sleep(50 * time.Millisecond) // every part of the API is parked on the clock
	parked := clk.Waiters()
	park := func() {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); clk.Waiters() != parked; time.Sleep(100 * time.Microsecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d timers pending, want %d: the watch is not back waiting", clk.Waiters(), parked)
			}
		}
	}
	// gap advances the clock 10 ms at a time until the watch polls again,
	// and says how long that took.
	gap := func() time.Duration {
		t.Helper()
		n := fs.calls.Load()
		var d time.Duration
		for fs.calls.Load() == n {
			park()
			clk.Advance(10 * time.Millisecond)
			d += 10 * time.Millisecond
			park()
		}
		return d
	}
	var gaps []time.Duration
	for range 8 {
		gaps = append(gaps, gap())
	}
	want := []time.Duration{20, 40, 80, 160, 320, 640, 1000, 1000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(gaps, want) {
		t.Fatalf("polls came %v apart while failing, want %v", gaps, want)
	}
	if n := logs.count("cannot read the fleet"); n != 1 {
		t.Fatalf("the fault logged %d times, want once\n%s", n, logs.String())
	}
	fs.err.Store(nil)
	gap()
	if n := logs.count("reading the fleet again"); n != 1 {
		t.Fatalf("the recovery logged %d times, want once\n%s", n, logs.String())
	}
	if d := gap(); d != 10*time.Millisecond {
		t.Fatalf("after the recovery the watch polls %s apart, want its 10ms", d)
	}
}
