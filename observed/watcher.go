package observed

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/clock"
)

// WatchClient is what a Watcher needs of a tenement server.
type WatchClient interface {
	Ping(ctx context.Context) error
	// ListNames lists the server's instances as name → health word,
	// returning prev itself (changed false) when nothing differs from it.
	ListNames(ctx context.Context, prev map[string]slum.InstanceHealth) (m map[string]slum.InstanceHealth, changed bool, err error)
	Stream(ctx context.Context) error
}

var _ WatchClient = (*Client)(nil)

// WatchPolicy says how a Watcher watches a server.
type WatchPolicy struct {
	ProbeInterval time.Duration // between probes of a server that answers
	ProbeTimeout  time.Duration // a probe without an answer by then failed
	// ProbeRetry is the wait before the next probe after a failed one:
	// short, so a crashed server (whose probes fail at once) is declared
	// dead far sooner than a hung one (whose probes time out).
	ProbeRetry   time.Duration
	Detector     DetectorPolicy
	PollInterval time.Duration // between instance lists
	PollTimeout  time.Duration
	// Stream holds the server's log stream open, so that a crash is
	// noticed the moment its connection closes.
	Stream bool
}

// Watcher watches one tenement server: it probes its health endpoint,
// lists its instances and holds its log stream open, and publishes a new
// Snapshot whenever what it knows changes. It owns all of that state; the
// rest of slum only ever sees the Snapshot values.
type Watcher struct {
	id      string
	client  WatchClient
	clock   clock.Clock
	publish func(*Snapshot)

	// Requests from other goroutines.
	pollSoon chan struct{}
	policy   chan WatchPolicy

	// Owned by Run (or by Refresh, in manual mode).
	pol      WatchPolicy
	det      *Detector
	seq      uint64
	listed   bool
	listedAt time.Time
	listErr  string
	insts    map[string]slum.InstanceHealth
	content  uint64
}

// NewWatcher returns a watcher of server id; publish receives every new
// Snapshot and must not block for long.
func NewWatcher(id string, c WatchClient, pol WatchPolicy, clk clock.Clock, publish func(*Snapshot)) *Watcher {
	return &Watcher{id: id, client: c, clock: clk, publish: publish, pol: pol, det: NewDetector(clk.Now()),
		pollSoon: make(chan struct{}, 1), policy: make(chan WatchPolicy, 1)}
}

// PollSoon asks for an instance list as soon as possible: the controller
// just acted on the server and wants to see the result.
func (w *Watcher) PollSoon() {
	select {
	case w.pollSoon <- struct{}{}:
	default:
	}
}

// SetPolicy changes how the server is watched (the fleet's settings
// changed).
func (w *Watcher) SetPolicy(p WatchPolicy) {
	for {
		select {
		case w.policy <- p:
			return
		case <-w.policy: // drop an older, unapplied one
		}
	}
}

func (w *Watcher) snapshot() *Snapshot {
	w.seq++
	return &Snapshot{Server: w.id, Seq: w.seq, Content: w.content, Health: w.det.State(), Listed: w.listed,
		ListedAt: w.listedAt, ListErr: w.listErr, Instances: w.insts}
}

type probeOutcome struct {
	at   time.Time
	took time.Duration
	err  error
}

type listOutcome struct {
	seq     uint64 // which list call, in Run
	start   time.Time
	insts   map[string]slum.InstanceHealth
	changed bool // insts is not the map the call was given
	err     error
}

// Refresh probes and lists the server now, waits for both, and returns
// (and publishes) the result. It is for callers that drive a watcher by
// hand (a dry run, tests); it must not run alongside Run.
func (w *Watcher) Refresh(ctx context.Context) *Snapshot {
	var wg sync.WaitGroup
	var pr probeOutcome
	var lr listOutcome
	wg.Add(2)
	go func() { defer wg.Done(); pr = w.probe(ctx, w.pol.ProbeTimeout) }()
	go func() { defer wg.Done(); lr = w.list(ctx, w.pol.PollTimeout, w.insts) }()
	wg.Wait()
	w.onProbe(pr)
	w.onList(lr)
	s := w.snapshot()
	w.publish(s)
	return s
}

func (w *Watcher) probe(ctx context.Context, timeout time.Duration) probeOutcome {
	start := w.clock.Now()
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := w.client.Ping(pctx)
	now := w.clock.Now()
	return probeOutcome{at: now, took: now.Sub(start), err: err}
}

// list lists the server; prev is the map the last list made (maps of
// instances are never modified, so the call may read it while Run goes
// on).
func (w *Watcher) list(ctx context.Context, timeout time.Duration, prev map[string]slum.InstanceHealth) listOutcome {
	start := w.clock.Now()
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	insts, changed, err := w.client.ListNames(lctx, prev)
	return listOutcome{start: start, insts: insts, changed: changed, err: err}
}

func (w *Watcher) onProbe(r probeOutcome) bool {
	return w.det.Probe(r.at, r.err, w.pol.Detector)
}

// onList records a list call; it reports whether the snapshot changed.
func (w *Watcher) onList(r listOutcome) bool {
	changed := w.det.Listed(w.clock.Now(), r.err, w.pol.Detector)
	if r.err != nil {
		if w.listed {
			w.content++
		}
		changed = changed || w.listed
		w.listed, w.listErr = false, r.err.Error()
		return changed
	}
	if !w.listed || r.changed {
		w.insts = r.insts
		w.content++
	}
	w.listed, w.listedAt, w.listErr = true, r.start, ""
	return true
}

// Run watches the server until ctx ends. Probes, lists and the stream run
// in goroutines of their own and report back here, so a hung call never
// holds up the others.
func (w *Watcher) Run(ctx context.Context) {
	r := &watchRun{w: w, ctx: ctx, probes: make(chan probeOutcome, 1), lists: make(chan listOutcome, 1),
		streamEnded: make(chan error, 1), cancelList: func() {}}
	r.startProbe()
	r.startList()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-w.policy:
			w.pol = p
		case <-r.nextProbe:
			r.startProbe()
		case <-r.nextPoll:
			r.startList()
		case <-w.pollSoon:
			// A list under way may have started before what it should
			// show happened: list again once it is back.
			if r.listing {
				r.relist = true
			} else {
				r.listSoon()
			}
		case <-r.soon:
			r.soon = nil
			r.startList()
		case <-r.streamRetry:
			r.startStream()
		case err := <-r.streamEnded:
			if !r.onStreamEnded(err) {
				return
			}
		case p := <-r.probes:
			r.onProbe(p)
		case l := <-r.lists:
			r.onList(l)
		}
	}
}

// watchRun is what Run keeps between its events: which calls are under
// way and when the next ones are due.
type watchRun struct {
	w           *Watcher
	ctx         context.Context
	probes      chan probeOutcome
	lists       chan listOutcome
	streamEnded chan error

	probing, listing, streaming bool
	relist                      bool // a list was asked for while one was under way
	nextProbe, nextPoll         <-chan time.Time
	streamRetry                 <-chan time.Time
	soon                        <-chan time.Time // a list asked for soon, waiting its turn
	listStarted                 time.Time
	listSeq                     uint64
	cancelList                  func()
}

func (r *watchRun) startProbe() {
	if r.probing {
		return
	}
	r.probing, r.nextProbe = true, nil
	timeout := r.w.pol.ProbeTimeout
	go func() { r.probes <- r.w.probe(r.ctx, timeout) }()
}

func (r *watchRun) startList() {
	if r.listing {
		return
	}
	r.listing, r.nextPoll, r.soon, r.listStarted = true, nil, nil, r.w.clock.Now()
	r.listSeq++
	seq, timeout, prev := r.listSeq, r.w.pol.PollTimeout, r.w.insts
	lctx, cancel := context.WithCancel(r.ctx)
	r.cancelList = cancel
	go func() {
		out := r.w.list(lctx, timeout, prev)
		out.seq = seq
		r.lists <- out
	}()
}

// listSoon lists as soon as allowed: lists asked for (after every batch
// of actions on the server) come at most every PollInterval/20, so a
// server taking a thousand spawns is not listed a thousand times.
func (r *watchRun) listSoon() {
	if r.soon != nil {
		return
	}
	gap := max(r.w.pol.PollInterval/20, 50*time.Millisecond) - r.w.clock.Now().Sub(r.listStarted)
	if gap <= 0 {
		r.startList()
		return
	}
	r.soon = r.w.clock.After(gap)
}

func (r *watchRun) startStream() {
	if r.streaming || !r.w.pol.Stream || r.w.det.State().Health != slum.HealthOnline {
		return
	}
	r.streaming, r.streamRetry = true, nil
	go func() { r.streamEnded <- r.w.client.Stream(r.ctx) }()
}

// onStreamEnded handles the end of the log stream; false: Run is over.
func (r *watchRun) onStreamEnded(err error) bool {
	r.streaming = false
	if r.ctx.Err() != nil {
		return false
	}
	// The connection closing is the first sign of a crash: probe now
	// rather than at the next interval.
	r.startProbe()
	if errors.Is(err, ErrUnauthorized) {
		r.streamRetry = nil
	} else {
		r.streamRetry = r.w.clock.After(5 * r.w.pol.ProbeInterval)
	}
	return true
}

func (r *watchRun) onProbe(p probeOutcome) {
	w := r.w
	r.probing = false
	was := w.det.State().Health
	if w.onProbe(p) {
		now := w.det.State().Health
		if now == slum.HealthOnline && was != slum.HealthOnline {
			// Back: list at once (stale copies are fenced at the first
			// successful list) and watch the stream. A list sent while
			// it was cut off may hang until its timeout: give it up.
			if r.listing {
				r.cancelList()
				r.listing = false
			}
			r.startList()
			r.startStream()
		}
		w.publish(w.snapshot())
	}
	// After a failure, probe again soon: at once after a timeout (the
	// probe already waited), ProbeRetry after a refusal.
	wait := w.pol.ProbeInterval
	if p.err != nil && !answered(p.err) {
		wait = max(0, w.pol.ProbeRetry-p.took)
	}
	r.nextProbe = w.clock.After(wait)
	if !r.streaming && r.streamRetry == nil {
		r.startStream()
	}
}

func (r *watchRun) onList(l listOutcome) {
	if l.seq != r.listSeq {
		return // a list given up on
	}
	r.cancelList()
	r.listing = false
	if r.w.onList(l) {
		r.w.publish(r.w.snapshot())
	}
	r.nextPoll = r.w.clock.After(r.w.pol.PollInterval)
	if r.relist {
		r.relist = false
		r.listSoon()
	}
}
