package reconcile

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slum-fleet/slum/observed"
)

type recorder struct {
	mu    sync.Mutex
	calls map[string]int
	errs  map[string][]error // per name, consumed in order; then success
	inFly atomic.Int32
	peak  atomic.Int32
	hold  time.Duration
}

func (r *recorder) exec(_ context.Context, a Action) error {
	n := r.inFly.Add(1)
	for {
		p := r.peak.Load()
		if n <= p || r.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(r.hold)
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

func newTestQueue(t *testing.T, r *recorder, concurrency, perServer int) (*queue, *[]itemState) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var states []itemState
	q := newQueue(ctx, concurrency, perServer, time.Second, BackoffPolicy{Initial: 20 * time.Millisecond, Max: 80 * time.Millisecond},
		r.exec, func(a Action, err error, st itemState, idle bool) {
			mu.Lock()
			states = append(states, st)
			mu.Unlock()
		}, nil)
	t.Cleanup(func() { cancel(); q.wait() })
	return q, &states
}

func waitIdle(t *testing.T, q *queue) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for q.depth() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("queue never drained")
		}
		time.Sleep(time.Millisecond)
	}
}

func spawnOf(name string, gen int64) Action {
	return Action{Kind: Spawn, ServerID: "s1", Name: "api:" + name, Process: "api", ID: name, Generation: gen}
}

func TestQueueBackoffResetsOnSuccess(t *testing.T) {
	retry := &observed.Error{Class: observed.ErrUnavailable, Message: "boom"}
	r := &recorder{calls: map[string]int{}, errs: map[string][]error{"api:a--p": {retry, retry}}}
	q, _ := newTestQueue(t, r, 4, 2)
	a := spawnOf("a--p", 1)

	obs := time.Now()
	q.offer(a, obs, "k")
	waitIdle(t, q)
	st, _ := q.lookup("s1", a.Name)
	if st.attempts != 1 || st.lastErr == "" || st.parked {
		t.Fatalf("after one failure: %+v", st)
	}
	// Offered again at once: the backoff holds it back.
	q.offer(a, time.Now(), "k")
	waitIdle(t, q)
	if n := r.count(a.Name); n != 1 {
		t.Fatalf("retried during backoff: %d calls", n)
	}
	// After the backoff it runs again (and fails), then succeeds.
	for r.count(a.Name) < 3 {
		time.Sleep(10 * time.Millisecond)
		q.offer(a, time.Now(), "k")
		waitIdle(t, q)
	}
	st, _ = q.lookup("s1", a.Name)
	if st.attempts != 0 || st.lastErr != "" {
		t.Fatalf("success did not reset the item: %+v", st)
	}
	// Done: not repeated until the server is observed after the success.
	q.offer(a, obs, "k")
	waitIdle(t, q)
	if n := r.count(a.Name); n != 3 {
		t.Fatalf("repeated a done action on a stale observation: %d calls", n)
	}
	q.offer(a, time.Now().Add(time.Millisecond), "k")
	waitIdle(t, q)
	if n := r.count(a.Name); n != 4 {
		t.Fatalf("a newer observation that still lacks it must retry: %d calls", n)
	}
}

func TestQueueParksPermanentFailures(t *testing.T) {
	perm := &observed.Error{Class: observed.ErrUnknownProcess, Message: "Unknown process: api"}
	r := &recorder{calls: map[string]int{}, errs: map[string][]error{"api:a--p": {perm, perm}}}
	q, _ := newTestQueue(t, r, 4, 2)
	a := spawnOf("a--p", 1)
	q.offer(a, time.Now(), "k")
	waitIdle(t, q)
	for i := 0; i < 5; i++ {
		time.Sleep(25 * time.Millisecond)
		st := q.offer(a, time.Now(), "k")
		if !st.parked {
			t.Fatalf("not parked: %+v", st)
		}
	}
	waitIdle(t, q)
	if n := r.count(a.Name); n != 1 {
		t.Fatalf("a parked item was retried: %d calls", n)
	}
	// A new generation unparks it.
	q.offer(spawnOf("a--p", 2), time.Now(), "k")
	waitIdle(t, q)
	if n := r.count(a.Name); n != 2 {
		t.Fatalf("new generation not tried: %d calls", n)
	}
	// So does a change of the server's URL or token.
	q.offer(spawnOf("a--p", 2), time.Now(), "k2")
	waitIdle(t, q)
	if n := r.count(a.Name); n != 3 {
		t.Fatalf("changed server not tried: %d calls", n)
	}
	if st, _ := q.lookup("s1", a.Name); st.parked || st.attempts != 0 {
		t.Fatalf("success after unparking: %+v", st)
	}
}

func TestQueueBoundsConcurrency(t *testing.T) {
	r := &recorder{calls: map[string]int{}, errs: map[string][]error{}, hold: 5 * time.Millisecond}
	q, _ := newTestQueue(t, r, 3, 2)
	for i := 0; i < 40; i++ {
		a := spawnOf("t"+string(rune('a'+i%26))+string(rune('a'+i/26))+"--p", 1)
		a.ServerID = []string{"s1", "s2", "s3", "s4"}[i%4]
		q.offer(a, time.Now(), "k")
	}
	waitIdle(t, q)
	if p := r.peak.Load(); p > 3 || p < 2 {
		t.Fatalf("peak concurrency %d, want at most 3 (and some parallelism)", p)
	}

	r2 := &recorder{calls: map[string]int{}, errs: map[string][]error{}, hold: 5 * time.Millisecond}
	q2, _ := newTestQueue(t, r2, 10, 2)
	for i := 0; i < 20; i++ {
		q2.offer(spawnOf("t"+string(rune('a'+i))+"--p", 1), time.Now(), "k")
	}
	waitIdle(t, q2)
	if p := r2.peak.Load(); p != 2 {
		t.Fatalf("peak concurrency on one server %d, want 2", p)
	}
}

func TestQueueDedupesInFlight(t *testing.T) {
	r := &recorder{calls: map[string]int{}, errs: map[string][]error{}, hold: 30 * time.Millisecond}
	q, _ := newTestQueue(t, r, 4, 4)
	a := spawnOf("a--p", 1)
	for i := 0; i < 10; i++ {
		q.offer(a, time.Now(), "k")
	}
	waitIdle(t, q)
	if n := r.count(a.Name); n != 1 {
		t.Fatalf("%d calls for one item offered 10 times", n)
	}
}
