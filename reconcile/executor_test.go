package reconcile

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slum-fleet/slum/internal/fakeclock"
	"github.com/slum-fleet/slum/observed"
)

type recorder struct {
	mu    sync.Mutex
	calls map[string]int
	errs  map[string][]error // per name, consumed in order; then success
	inFly atomic.Int32
	peak  atomic.Int32
	hold  chan struct{} // when set, each call waits for a send on it, or its close
	once  sync.Once
	began chan string // each call's name as it begins
}

// release lets every held call through.
func (r *recorder) release() {
	if r.hold != nil {
		r.once.Do(func() { close(r.hold) })
	}
}

func newRecorder() *recorder {
	return &recorder{calls: map[string]int{}, errs: map[string][]error{}, began: make(chan string, 1024)}
}

// started waits for n calls to begin.
func (r *recorder) started(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.began:
		case <-time.After(5 * time.Second):
			t.Fatal("a call never began")
		}
	}
}

func (r *recorder) send(_ context.Context, a Action) error {
	// Counted in flight before it is said to have begun: a test that
	// waits for n calls to begin sees them all in the peak.
	n := r.inFly.Add(1)
	for {
		p := r.peak.Load()
		if n <= p || r.peak.CompareAndSwap(p, n) {
			break
		}
	}
	r.began <- a.Name
	if r.hold != nil {
		<-r.hold
	}
	r.inFly.Add(-1)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[a.Name]++
	if errs := r.errs[a.Name]; len(errs) > 0 {
		r.errs[a.Name] = errs[1:]
		return errs[0]
	}
	return nil
}

func (r *recorder) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[name]
}

type execFixture struct {
	e       *Executor
	clock   *fakeclock.Clock
	mu      sync.Mutex
	results []Result
	reject  map[string]string // name → why the check drops it
	result  chan struct{}     // signalled after each result
}

func newExecFixture(t *testing.T, r *recorder, concurrency, perServer int) *execFixture {
	ctx, cancel := context.WithCancel(context.Background())
	x := &execFixture{clock: fakeclock.New(t0), reject: map[string]string{}, result: make(chan struct{}, 1)}
	check := func(a Action) error {
		x.mu.Lock()
		defer x.mu.Unlock()
		if why := x.reject[a.Name]; why != "" {
			return errors.New(why)
		}
		return nil
	}
	x.e = NewExecutor(ctx, ExecutorConfig{Concurrency: concurrency, PerServer: perServer,
		Backoff: BackoffPolicy{Initial: 20 * time.Millisecond, Max: 80 * time.Millisecond}}, x.clock, r.send, check,
		func(res Result) {
			x.mu.Lock()
			x.results = append(x.results, res)
			x.mu.Unlock()
			select {
			case x.result <- struct{}{}:
			default:
			}
		}, nil)
	t.Cleanup(func() {
		r.release()
		cancel()
		x.e.Wait()
	})
	return x
}

func (x *execFixture) idle(t *testing.T) {
	t.Helper()
	// An action leaves the depth before its result is handed over: the
	// last result is heard with the executor idle.
	for x.e.Depth() > 0 {
		select {
		case <-x.result:
		case <-time.After(5 * time.Second):
			t.Fatal("the executor never drained")
		}
	}
}

// offerOne offers one action, as OfferAll does a batch.
func offerOne(e *Executor, a Action, observedAt time.Time, serverKey string) (ItemState, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.offer(a, observedAt, serverKey)
}

func spawnOf(name string, gen int64) Action {
	return Action{Kind: Spawn, ServerID: "s1", Name: "api:" + name, Generation: gen}
}

func TestExecutorBackoffResetsOnSuccess(t *testing.T) {
	retry := &observed.Error{Class: observed.ErrUnavailable, Message: "boom"}
	r := newRecorder()
	r.errs["api:a--p"] = []error{retry, retry}
	x := newExecFixture(t, r, 4, 2)
	a := spawnOf("a--p", 1)
	obs := x.clock.Now()
	offerOne(x.e, a, obs, "k")
	x.idle(t)
	st, _ := x.e.State("s1", a.Name)
	if st.Attempts != 1 || st.LastErr == "" || st.Parked {
		t.Fatalf("after one failure: %+v", st)
	}
	// Offered again at once: the backoff holds it back.
	if _, queued := offerOne(x.e, a, x.clock.Now(), "k"); queued {
		t.Fatal("queued during its backoff")
	}
	// After the backoff (at most 80ms with jitter) it runs again, fails,
	// and after the next backoff succeeds.
	for r.count(a.Name) < 3 {
		x.clock.Advance(100 * time.Millisecond)
		offerOne(x.e, a, x.clock.Now(), "k")
		x.idle(t)
	}
	st, _ = x.e.State("s1", a.Name)
	if st.Attempts != 0 || st.LastErr != "" {
		t.Fatalf("success did not reset the item: %+v", st)
	}
	// Done: not repeated until the server is observed after the success.
	offerOne(x.e, a, obs, "k")
	x.idle(t)
	if n := r.count(a.Name); n != 3 {
		t.Fatalf("repeated a done action on a stale observation: %d calls", n)
	}
	x.clock.Advance(time.Millisecond)
	offerOne(x.e, a, x.clock.Now(), "k")
	x.idle(t)
	if n := r.count(a.Name); n != 4 {
		t.Fatalf("a newer observation that still lacks it must retry: %d calls", n)
	}
}

// What a success leaves is a mark of when: the same action waits for a
// newer observation, the opposite one goes at once, and Retain forgets it.
func TestExecutorMarksDoneWork(t *testing.T) {
	r := newRecorder()
	x := newExecFixture(t, r, 4, 2)
	a := spawnOf("a--p", 1)
	obs := x.clock.Now()
	offerOne(x.e, a, obs, "k")
	x.idle(t)
	x.e.mu.Lock()
	_, item := x.e.servers["s1"].items[a.Name]
	_, mark := x.e.servers["s1"].done[a.Name]
	x.e.mu.Unlock()
	if item || !mark {
		t.Fatalf("after a success: an item %v, a mark %v; want only a mark", item, mark)
	}
	if st, known := x.e.State("s1", a.Name); !known || st != (ItemState{}) {
		t.Fatalf("state of done work %+v, known %v", st, known)
	}
	if _, queued := offerOne(x.e, a, obs, "k"); queued {
		t.Fatal("done work queued again on an observation from before it")
	}
	stop := a
	stop.Kind = Stop
	if _, queued := offerOne(x.e, stop, obs, "k"); !queued {
		t.Fatal("the opposite action waited for the done one's observation")
	}
	x.idle(t)
	if n := r.count(a.Name); n != 2 {
		t.Fatalf("%d calls, want the spawn and the stop", n)
	}
	x.e.Retain("s1", nil)
	if _, known := x.e.State("s1", a.Name); known {
		t.Fatal("Retain kept the mark of work no longer wanted")
	}
	if _, queued := offerOne(x.e, stop, obs, "k"); !queued {
		t.Fatal("after Retain forgot it, the action was not queued")
	}
	x.idle(t)
}

// The mark is of what was sent: a stop offered while a spawn was in
// flight does not make a later offer of the spawn, on a list from before
// it finished, look like the opposite action.
func TestExecutorMarksWhatWasSent(t *testing.T) {
	r := newRecorder()
	r.hold = make(chan struct{})
	x := newExecFixture(t, r, 4, 2)
	a := spawnOf("a--p", 1)
	obs := x.clock.Now()
	offerOne(x.e, a, obs, "k")
	r.started(t, 1)
	stop := a
	stop.Kind = Stop
	if _, queued := offerOne(x.e, stop, obs, "k"); queued {
		t.Fatal("a stop was queued while the spawn was in flight")
	}
	r.release()
	x.idle(t)
	if _, queued := offerOne(x.e, a, obs, "k"); queued {
		t.Fatal("the spawn was queued again on a list from before it finished")
	}
	if _, queued := offerOne(x.e, stop, obs, "k"); !queued {
		t.Fatal("the stop, the opposite of what was sent, waited")
	}
	x.idle(t)
	if n := r.count(a.Name); n != 2 {
		t.Fatalf("%d calls, want the spawn and the stop", n)
	}
}

func TestExecutorParksPermanentFailures(t *testing.T) {
	perm := &observed.Error{Class: observed.ErrUnknownProcess, Message: "Unknown process: api"}
	r := newRecorder()
	r.errs["api:a--p"] = []error{perm, perm}
	x := newExecFixture(t, r, 4, 2)
	a := spawnOf("a--p", 1)
	offerOne(x.e, a, x.clock.Now(), "k")
	x.idle(t)
	for i := 0; i < 5; i++ {
		x.clock.Advance(time.Minute)
		if st, queued := offerOne(x.e, a, x.clock.Now(), "k"); !st.Parked || queued {
			t.Fatalf("not parked: %+v", st)
		}
	}
	if n := r.count(a.Name); n != 1 {
		t.Fatalf("a parked item was retried: %d calls", n)
	}
	// A new generation unparks it.
	offerOne(x.e, spawnOf("a--p", 2), x.clock.Now(), "k")
	x.idle(t)
	if n := r.count(a.Name); n != 2 {
		t.Fatalf("new generation not tried: %d calls", n)
	}
	// So does a change of the server's URL or token.
	offerOne(x.e, spawnOf("a--p", 2), x.clock.Now(), "k2")
	x.idle(t)
	if n := r.count(a.Name); n != 3 {
		t.Fatalf("changed server not tried: %d calls", n)
	}
	if st, _ := x.e.State("s1", a.Name); st.Parked || st.Attempts != 0 {
		t.Fatalf("success after unparking: %+v", st)
	}
}

func TestExecutorBoundsConcurrency(t *testing.T) {
	for _, c := range []struct {
		name                    string
		concurrency, perServer  int
		servers, items, maxPeak int
	}{
		{"overall", 3, 2, 4, 40, 3},
		{"per server", 10, 2, 1, 20, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRecorder()
			r.hold = make(chan struct{})
			x := newExecFixture(t, r, c.concurrency, c.perServer)
			for i := 0; i < c.items; i++ {
				a := spawnOf("t"+string(rune('a'+i%26))+string(rune('a'+i/26))+"--p", 1)
				a.ServerID = []string{"s1", "s2", "s3", "s4"}[i%c.servers]
				offerOne(x.e, a, x.clock.Now(), "k")
			}
			// The bound fills up while the calls hang, and is never passed
			// (peak counts every call as it begins).
			r.started(t, c.maxPeak)
			r.release()
			x.idle(t)
			if p := int(r.peak.Load()); p != c.maxPeak {
				t.Fatalf("peak concurrency %d, want %d", p, c.maxPeak)
			}
		})
	}
}

func TestExecutorDedupesInFlight(t *testing.T) {
	r := newRecorder()
	r.hold = make(chan struct{})
	x := newExecFixture(t, r, 4, 4)
	a := spawnOf("a--p", 1)
	queued := 0
	for i := 0; i < 10; i++ {
		if _, q := offerOne(x.e, a, x.clock.Now(), "k"); q {
			queued++
		}
	}
	r.hold <- struct{}{}
	x.idle(t)
	if n := r.count(a.Name); n != 1 || queued != 1 {
		t.Fatalf("%d calls (%d queued) for one item offered 10 times", n, queued)
	}
}

func TestExecutorChecksEachActionWhenItIsSent(t *testing.T) {
	r := newRecorder()
	r.hold = make(chan struct{})
	x := newExecFixture(t, r, 1, 1)
	first, second := spawnOf("a--p", 1), spawnOf("b--p", 1)
	offerOne(x.e, first, x.clock.Now(), "k")
	offerOne(x.e, second, x.clock.Now(), "k")
	// While the first call is in flight, the second instance is removed
	// from the desired state: its queued spawn must not be sent.
	r.started(t, 1)
	x.mu.Lock()
	x.reject[second.Name] = "b is no longer desired"
	x.mu.Unlock()
	r.hold <- struct{}{}
	x.idle(t)
	if r.count(second.Name) != 0 || r.count(first.Name) != 1 {
		t.Fatalf("calls: first %d, second %d", r.count(first.Name), r.count(second.Name))
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	var skipped []string
	for _, res := range x.results {
		if res.Skip != "" {
			skipped = append(skipped, res.Action.Name+": "+res.Skip)
		}
	}
	if len(skipped) != 1 || skipped[0] != second.Name+": b is no longer desired" {
		t.Fatalf("skipped %v", skipped)
	}
}

// A list taken after work finished lets go of its mark; one taken before
// keeps it, and with it the rule that the work is not repeated.
func TestExecutorListedLetsGoOfMarksItShows(t *testing.T) {
	r := newRecorder()
	x := newExecFixture(t, r, 4, 2)
	a, b := spawnOf("a--p", 1), spawnOf("b--p", 1)
	before := x.clock.Now()
	offerOne(x.e, a, before, "k")
	x.idle(t)
	x.clock.Advance(time.Second)
	offerOne(x.e, b, before, "k")
	x.idle(t)
	marks := func() int {
		x.e.mu.Lock()
		defer x.e.mu.Unlock()
		return len(x.e.servers["s1"].done)
	}
	x.e.Listed("s1", before)
	if n := marks(); n != 2 {
		t.Fatalf("a list from before both finished left %d marks, want 2", n)
	}
	if _, queued := offerOne(x.e, a, before, "k"); queued {
		t.Fatal("done work queued again on a list from before it")
	}
	x.e.Listed("s1", before.Add(500*time.Millisecond)) // after a, before b
	if _, known := x.e.State("s1", a.Name); known || marks() != 1 {
		t.Fatalf("after a list that may show a: its mark known %v, %d marks left; want only b's", known, marks())
	}
	if _, queued := offerOne(x.e, b, before.Add(500*time.Millisecond), "k"); queued {
		t.Fatal("b queued again on a list from before it finished")
	}
	x.e.Listed("s1", x.clock.Now().Add(time.Millisecond))
	x.e.Listed("nowhere", x.clock.Now()) // a server with no queue: nothing to do
	if n := marks(); n != 0 {
		t.Fatalf("%d marks left after a list from after all the work", n)
	}
}
