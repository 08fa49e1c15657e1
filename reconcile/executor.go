package reconcile

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/sync/semaphore"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/observed"
)

// BackoffPolicy shapes per-item retries.
type BackoffPolicy struct {
	Initial time.Duration
	Max     time.Duration
}

// SendFunc makes one call on a server, bounded by a timeout of its own:
// the context it is given never ends.
type SendFunc func(ctx context.Context, a Action) error

// CheckFunc tells, at the moment an action is about to be sent, whether it
// is still wanted; a non-nil error says why not, and the action is dropped
// unsent. Plans are made from a snapshot; by the time a queued action's
// turn comes, the desired state may have moved on.
type CheckFunc func(a Action) error

// Result is what became of one offered action.
type Result struct {
	Action Action
	Err    error  // the call's error; nil on success
	Skip   string // why the action was dropped unsent, or ""
	State  ItemState
	At     time.Time // when the call finished
}

// parkKey is what a parked item waits to see change: the kind of action,
// the instance's generation, the server's URL and token.
type parkKey struct {
	kind       Kind
	generation int64
	server     string
}

// ItemState is what the executor says of a work item, for status.
type ItemState struct {
	Attempts int64
	LastErr  string
	Parked   bool // failed permanently; waits for its desired state or server to change
}

// item is the work-queue state of one instance on one server, from the
// moment its action is queued until it succeeds.
type item struct {
	action   Action
	queued   bool
	inFlight bool
	parkKey  parkKey  // of the offer that queued it
	fail     *failure // nil until a send fails: most items never do
}

// failure is an item's history of failed sends.
type failure struct {
	attempts int64
	lastErr  string
	bo       *backoff.ExponentialBackOff
	nextAt   time.Time // earliest retry
	parked   bool      // a permanent failure: waits for parkKey to change
}

// doneMark is what is left of an item that succeeded: not repeated until
// its server is observed after it. A converging fleet holds one for every
// spawn made until its lists show them all, so it is small: 16 bytes, an
// entry of 32 with its name (56 with a Kind and a time.Time).
type doneMark struct {
	at   time.Duration // when it finished, from the executor's epoch
	stop bool          // a stop was sent, not a spawn
}

func (it *item) state() ItemState {
	if f := it.fail; f != nil {
		return ItemState{Attempts: f.attempts, LastErr: f.lastErr, Parked: f.parked}
	}
	return ItemState{}
}

func (it *item) parked() bool { return it.fail != nil && it.fail.parked }

type serverQueue struct {
	items   map[string]*item    // by tenement name
	done    map[string]doneMark // by tenement name; never also in items
	busy    int                 // items queued or in flight
	pending []*item
	signal  chan struct{}
	gone    chan struct{} // closed when the server leaves the fleet
	listed  time.Time     // the newest list the done marks were let go by
}

// shrink lets go of emptied maps' tables: a map keeps its size once
// emptied, and a server's grown to a whole converge (~5 MB of items and
// as much of marks over 100 servers of 1,000) would be held for good.
func (sq *serverQueue) shrink() {
	if len(sq.items) == 0 {
		sq.items = map[string]*item{}
	}
	if len(sq.done) == 0 {
		sq.done = map[string]doneMark{}
	}
}

// ExecutorConfig tunes an Executor.
type ExecutorConfig struct {
	Concurrency int // calls in flight overall
	PerServer   int // calls in flight per server
	Backoff     BackoffPolicy
}

// Executor is the controller's work queue: it owns retries. It runs
// actions with bounded concurrency, overall and per server, per-item
// exponential backoff with jitter that resets on success, and parks
// permanent failures until what they depend on changes. Every action is
// checked once more just before it is sent.
type Executor struct {
	cfg     ExecutorConfig
	send    SendFunc
	check   CheckFunc
	results func(Result)
	wake    func() // a backoff ran out: plan again
	clock   clock.Clock
	sem     *semaphore.Weighted
	ctx     context.Context // ends the workers
	wg      sync.WaitGroup

	// epoch is where done marks count their time from: its monotonic
	// reading carries over to the times they give back (epoch.Add).
	epoch time.Time

	mu      sync.Mutex
	servers map[string]*serverQueue
	busy    int // queued + in flight
}

func (e *Executor) mark(kind Kind, at time.Time) doneMark {
	return doneMark{at: at.Sub(e.epoch), stop: kind == Stop}
}

// seen reports whether a list taken at observedAt may show the effect of
// what m marks: it started after the call finished.
func (e *Executor) seen(m doneMark, observedAt time.Time) bool {
	return observedAt.After(e.epoch.Add(m.at))
}

// NewExecutor returns an executor whose workers run until ctx ends. results
// hears of every finished or dropped action, from the worker goroutines.
func NewExecutor(ctx context.Context, cfg ExecutorConfig, clk clock.Clock, send SendFunc, check CheckFunc,
	results func(Result), wake func()) *Executor {
	return &Executor{cfg: cfg, send: send, check: check, results: results, wake: wake, clock: clk,
		sem: semaphore.NewWeighted(int64(cfg.Concurrency)), ctx: ctx, servers: map[string]*serverQueue{}, epoch: clk.Now()}
}

func (e *Executor) server(id string) *serverQueue {
	sq, ok := e.servers[id]
	if !ok {
		sq = &serverQueue{items: map[string]*item{}, done: map[string]doneMark{}, signal: make(chan struct{}, 1), gone: make(chan struct{})}
		e.servers[id] = sq
		for i := 0; i < e.cfg.PerServer; i++ {
			e.wg.Add(1)
			go e.worker(sq)
		}
	}
	return sq
}

func (e *Executor) newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = e.cfg.Backoff.Initial
	b.MaxInterval = e.cfg.Backoff.Max
	b.Multiplier = 2
	b.RandomizationFactor = 0.5
	b.MaxElapsedTime = 0
	b.Clock = e.clock
	b.Reset()
	return b
}

// Offering is one action of a batch, with what offer takes besides.
type Offering struct {
	Action     Action
	ObservedAt time.Time
	ServerKey  string
}

// OfferAll offers a batch under one lock (a plan of a large fleet offers
// many at once; workers take the lock too) and reports, for each, whether
// it was queued.
func (e *Executor) OfferAll(batch []Offering) []bool {
	queued := make([]bool, len(batch))
	// The lock is let go every chunk, so that workers finishing calls
	// are not held up by a long batch.
	const chunk = 512
	for start := 0; start < len(batch); start += chunk {
		e.mu.Lock()
		for i := start; i < min(start+chunk, len(batch)); i++ {
			o := batch[i]
			_, queued[i] = e.offer(o.Action, o.ObservedAt, o.ServerKey)
		}
		e.mu.Unlock()
	}
	return queued
}

// offer asks for an action and reports whether it was queued. It is not
// when the same item is queued or in flight, waiting out its backoff,
// parked on the same generation and server settings (serverKey), or done
// and not yet observed since (observedAt is when the list the plan used
// was taken). The caller holds e.mu.
func (e *Executor) offer(a Action, observedAt time.Time, serverKey string) (ItemState, bool) {
	sq := e.server(a.ServerID)
	it, ok := sq.items[a.Name]
	if !ok {
		if d, done := sq.done[a.Name]; done {
			if d.stop == (a.Kind == Stop) && !e.seen(d, observedAt) {
				return ItemState{}, false
			}
			// Observed since, or the opposite action now.
			delete(sq.done, a.Name)
		}
		it = &item{}
		sq.items[a.Name] = it
	}
	if ok && it.action.Kind != a.Kind {
		// The opposite action: the other one's history does not apply.
		it.fail = nil
	}
	it.action = a
	park := parkKey{a.Kind, a.Generation, serverKey}
	switch {
	case it.queued || it.inFlight:
		return it.state(), false
	case it.parked() && it.parkKey == park:
		return it.state(), false
	case it.fail != nil && !it.fail.parked && e.clock.Now().Before(it.fail.nextAt):
		return it.state(), false
	}
	if it.parked() {
		// What it waited for changed: a fresh start, its last error
		// shown until the next attempt.
		it.fail = &failure{lastErr: it.fail.lastErr}
	}
	it.parkKey = park
	it.queued = true
	e.busy++
	sq.busy++
	sq.pending = append(sq.pending, it)
	select {
	case sq.signal <- struct{}{}:
	default:
	}
	return it.state(), true
}

// State reports an item's state without queuing anything.
func (e *Executor) State(server, name string) (ItemState, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if sq, ok := e.servers[server]; ok {
		if it, ok := sq.items[name]; ok {
			return it.state(), true
		}
		if _, ok := sq.done[name]; ok {
			return ItemState{}, true
		}
	}
	return ItemState{}, false
}

// Retain forgets a server's idle items whose names keep does not hold, so
// the executor only remembers work still wanted.
func (e *Executor) Retain(server string, keep map[string]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sq, ok := e.servers[server]
	if !ok {
		return
	}
	for name, it := range sq.items {
		if !keep[name] && !it.queued && !it.inFlight {
			delete(sq.items, name)
		}
	}
	for name := range sq.done {
		if !keep[name] {
			delete(sq.done, name)
		}
	}
	sq.shrink()
}

// Listed lets go of a server's marks of finished work that a list taken
// at listedAt may show: from that list on, every offer would clear them
// anyway (the loop offers with the newest list it has). Until then a
// converging fleet kept a mark for every spawn made (~6 MB at 100,000),
// until a plan found nothing at all to do. The same list again (every
// probe's snapshot carries it) lets go of nothing more: the marks left
// are of work that finished after it began.
func (e *Executor) Listed(server string, listedAt time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sq, ok := e.servers[server]
	if !ok || len(sq.done) == 0 || !listedAt.After(sq.listed) {
		return
	}
	sq.listed = listedAt
	for name, m := range sq.done {
		if e.seen(m, listedAt) {
			delete(sq.done, name)
		}
	}
	sq.shrink()
}

// DropServer forgets a server that left the fleet: its workers end once
// their queue is empty.
func (e *Executor) DropServer(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if sq, ok := e.servers[id]; ok {
		close(sq.gone)
		delete(e.servers, id)
	}
}

// ServerBusy reports whether any action on a server is queued or in
// flight.
func (e *Executor) ServerBusy(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	sq, ok := e.servers[id]
	return ok && sq.busy > 0
}

// Depth is how many actions are queued or in flight.
func (e *Executor) Depth() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.busy
}

func (e *Executor) worker(sq *serverQueue) {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		var it *item
		if len(sq.pending) > 0 {
			it = sq.pending[0]
			sq.pending[0] = nil
			sq.pending = sq.pending[1:]
		}
		e.mu.Unlock()
		if it == nil {
			select {
			case <-e.ctx.Done():
				return
			case <-sq.gone:
				return
			case <-sq.signal:
				continue
			}
		}
		if e.ctx.Err() != nil {
			e.mu.Lock()
			it.queued = false
			e.busy--
			sq.busy--
			a := it.action
			e.mu.Unlock()
			e.results(Result{Action: a, Skip: "the controller is stopping", At: e.clock.Now()})
			continue
		}
		e.run(sq, it)
	}
}

// errSkipped marks a dropped action in the item's history.
var errSkipped = errors.New("skipped")

func (e *Executor) run(sq *serverQueue, it *item) {
	// In-flight actions finish even when the controller is stopping. The
	// send bounds its call itself (the clients' timeout): a context of
	// its own per call cost a timer, a cancel context and a callback to
	// end a blocked read (~10% of what a converging controller allocated).
	ctx := context.WithoutCancel(e.ctx)
	if err := e.sem.Acquire(ctx, 1); err != nil {
		return
	}
	e.mu.Lock()
	it.queued, it.inFlight = false, true
	a := it.action
	e.mu.Unlock()

	var err error
	skip := ""
	if cerr := e.check(a); cerr != nil {
		skip, err = cerr.Error(), errSkipped
	} else {
		err = e.send(ctx, a)
	}
	e.sem.Release(1)

	e.mu.Lock()
	it.inFlight = false
	e.busy--
	sq.busy--
	var retryIn time.Duration
	now := e.clock.Now()
	switch {
	case err == errSkipped:
		err = nil
	case err == nil:
		// Its history ends; what is left is when, and what was sent, in
		// a mark of its own. (Nothing queues an item in flight: an offer
		// meanwhile only sets its action; an opposite one, offered again,
		// goes at once.)
		delete(sq.items, a.Name)
		sq.shrink() // its work done, not at the next idle plan
		sq.done[a.Name] = e.mark(a.Kind, now)
		it = nil
	default:
		if it.fail == nil {
			it.fail = &failure{}
		}
		f := it.fail
		f.attempts++
		f.lastErr = err.Error()
		if observed.IsPermanent(err) {
			f.parked = true
		} else {
			if f.bo == nil {
				f.bo = e.newBackoff()
			}
			retryIn = f.bo.NextBackOff()
			if ra := observed.RetryAfter(err); ra > retryIn {
				retryIn = ra
			}
			f.nextAt = now.Add(retryIn)
		}
	}
	var st ItemState // finished work has no history
	if it != nil {
		st = it.state()
	}
	e.mu.Unlock()
	if retryIn > 0 && e.wake != nil {
		e.clock.AfterFunc(retryIn, e.wake)
	}
	e.results(Result{Action: a, Err: err, Skip: skip, State: st, At: now})
}

// Wait blocks until every worker has returned; in-flight actions finish.
func (e *Executor) Wait() { e.wg.Wait() }
