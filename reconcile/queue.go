package reconcile

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/sync/semaphore"

	"github.com/slum-fleet/slum/observed"
)

// BackoffPolicy shapes per-item retries.
type BackoffPolicy struct {
	Initial time.Duration
	Max     time.Duration
}

// item is the work-queue state of one instance on one server.
type item struct {
	action   Action
	queued   bool
	inFlight bool
	attempts int64
	lastErr  string
	bo       *backoff.ExponentialBackOff
	nextAt   time.Time // earliest retry after a failure
	parked   bool      // a permanent failure: waits for parkKey to change
	parkKey  string
	doneAt   time.Time // last success: not repeated until observed after it
}

// itemState is what the queue says of an item, for status reporting.
type itemState struct {
	attempts int64
	lastErr  string
	parked   bool
	waiting  bool // in flight or queued
}

type serverQueue struct {
	items   map[string]*item // by tenement name
	pending []*item
	signal  chan struct{}
	gone    chan struct{} // closed when the server leaves the fleet
}

// execFunc performs one action against its server.
type execFunc func(ctx context.Context, a Action) error

// doneFunc hears of every finished action.
type doneFunc func(a Action, err error, st itemState, idle bool)

// queue runs actions with bounded concurrency, overall and per server,
// and per-item exponential backoff with jitter that resets on success.
type queue struct {
	mu        sync.Mutex
	servers   map[string]*serverQueue
	sem       *semaphore.Weighted
	perServer int
	timeout   time.Duration
	policy    BackoffPolicy
	exec      execFunc
	done      doneFunc
	now       func() time.Time
	busy      int // queued + in flight
	wg        sync.WaitGroup
	ctx       context.Context // ends the workers
	wake      func(after time.Duration)
}

func newQueue(ctx context.Context, concurrency, perServer int, timeout time.Duration, policy BackoffPolicy,
	exec execFunc, done doneFunc, wake func(time.Duration)) *queue {
	return &queue{servers: map[string]*serverQueue{}, sem: semaphore.NewWeighted(int64(concurrency)),
		perServer: perServer, timeout: timeout, policy: policy, exec: exec, done: done, now: time.Now, ctx: ctx, wake: wake}
}

func (q *queue) server(id string) *serverQueue {
	sq, ok := q.servers[id]
	if !ok {
		sq = &serverQueue{items: map[string]*item{}, signal: make(chan struct{}, 1), gone: make(chan struct{})}
		q.servers[id] = sq
		for i := 0; i < q.perServer; i++ {
			q.wg.Add(1)
			go q.worker(sq)
		}
	}
	return sq
}

func (q *queue) newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = q.policy.Initial
	b.MaxInterval = q.policy.Max
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}

// offer asks for an action. It is queued unless the same item is already
// queued or in flight, waiting out its backoff, parked on the same
// generation and server settings, or done and not yet observed since
// (observedAt is when the server's state the diff used was read).
func (q *queue) offer(a Action, observedAt time.Time, serverKey string) itemState {
	q.mu.Lock()
	defer q.mu.Unlock()
	sq := q.server(a.ServerID)
	it, ok := sq.items[a.Name]
	if !ok {
		it = &item{}
		sq.items[a.Name] = it
	}
	if it.action.Kind != a.Kind && ok {
		// The opposite action: history of the other one does not apply.
		it.doneAt, it.attempts, it.lastErr, it.nextAt, it.parked = time.Time{}, 0, "", time.Time{}, false
		if it.bo != nil {
			it.bo.Reset()
		}
	}
	it.action = a
	park := fmt.Sprintf("%s/%d/%s", a.Kind, a.Generation, serverKey)
	switch {
	case it.queued || it.inFlight:
	case it.parked && it.parkKey == park:
	case !it.doneAt.IsZero() && !observedAt.After(it.doneAt):
	case !it.parked && q.now().Before(it.nextAt):
	default:
		if it.parked {
			it.parked, it.attempts, it.nextAt = false, 0, time.Time{}
			if it.bo != nil {
				it.bo.Reset()
			}
		}
		it.parkKey = park
		it.queued = true
		q.busy++
		sq.pending = append(sq.pending, it)
		select {
		case sq.signal <- struct{}{}:
		default:
		}
	}
	return it.state()
}

func (it *item) state() itemState {
	return itemState{attempts: it.attempts, lastErr: it.lastErr, parked: it.parked, waiting: it.queued || it.inFlight}
}

// lookup reports an item's state without queuing anything.
func (q *queue) lookup(server, name string) (itemState, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	sq, ok := q.servers[server]
	if !ok {
		return itemState{}, false
	}
	it, ok := sq.items[name]
	if !ok {
		return itemState{}, false
	}
	return it.state(), true
}

// retain forgets a server's idle items whose names keep does not hold, so
// the queue only remembers work still wanted.
func (q *queue) retain(server string, keep map[string]bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	sq, ok := q.servers[server]
	if !ok {
		return
	}
	for name, it := range sq.items {
		if !keep[name] && !it.queued && !it.inFlight {
			delete(sq.items, name)
		}
	}
}

// dropServer forgets a server that left the fleet: its workers end once
// their queue is empty.
func (q *queue) dropServer(id string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if sq, ok := q.servers[id]; ok {
		close(sq.gone)
		delete(q.servers, id)
	}
}

// depth is how many actions are queued or in flight.
func (q *queue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.busy
}

func (q *queue) worker(sq *serverQueue) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		var it *item
		if len(sq.pending) > 0 {
			it = sq.pending[0]
			sq.pending[0] = nil
			sq.pending = sq.pending[1:]
		}
		q.mu.Unlock()
		if it == nil {
			select {
			case <-q.ctx.Done():
				return
			case <-sq.gone:
				return
			case <-sq.signal:
				continue
			}
		}
		if q.ctx.Err() != nil {
			q.mu.Lock()
			it.queued = false
			q.busy--
			q.mu.Unlock()
			continue
		}
		q.run(it)
	}
}

func (q *queue) run(it *item) {
	// In-flight actions finish even when the controller is stopping.
	ctx := context.WithoutCancel(q.ctx)
	if err := q.sem.Acquire(ctx, 1); err != nil {
		return
	}
	q.mu.Lock()
	it.queued, it.inFlight = false, true
	a := it.action
	q.mu.Unlock()

	actx, cancel := context.WithTimeout(ctx, q.timeout)
	err := q.exec(actx, a)
	cancel()
	q.sem.Release(1)

	q.mu.Lock()
	it.inFlight = false
	q.busy--
	var retryIn time.Duration
	if err == nil {
		it.attempts, it.lastErr, it.nextAt, it.doneAt = 0, "", time.Time{}, q.now()
		if it.bo != nil {
			it.bo.Reset()
		}
	} else {
		it.attempts++
		it.lastErr = err.Error()
		if observed.IsPermanent(err) {
			it.parked = true
		} else {
			if it.bo == nil {
				it.bo = q.newBackoff()
			}
			retryIn = it.bo.NextBackOff()
			if ra := observed.RetryAfter(err); ra > retryIn {
				retryIn = ra
			}
			it.nextAt = q.now().Add(retryIn)
		}
	}
	st, idle := it.state(), q.busy == 0
	q.mu.Unlock()
	if retryIn > 0 && q.wake != nil {
		q.wake(retryIn)
	}
	q.done(a, err, st, idle)
}

// wait blocks until every worker has returned; in-flight actions finish.
func (q *queue) wait() { q.wg.Wait() }
