package logs

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/slum-fleet/slum/observed"
)

// source reads one copy for a follower: it opens the copy's log stream,
// reads what the server keeps of the copy, then the stream's lines as
// they come, and reconnects (backing off) when the connection ends, until
// it is stopped. It only reads and queues; the follower takes the queue
// and owns what is done with it.
type source struct {
	spec   copySpec // as when it started: where it reads
	client *observed.Client
	q      Query
	opt    Options
	notify chan<- struct{} // poked when something is queued
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	queue   []event
	lines   int                 // evLine events in queue
	dropped int                 // lines dropped since the last take
	stream  *observed.LogStream // the open one, for kick
	retired bool                // no longer a copy: end with the stream

	// Owned by the follower.
	gone     string    // how its lines are marked now
	lost     bool      // its last connection failed and none succeeded since
	retireAt time.Time // when a retired copy stops being read
}

type eventKind int

const (
	evHistory eventKind = iota // a connection opened: what the server keeps
	evLine                     // a line of the stream
	evLost                     // the connection failed or ended
	evGaveUp                   // a failure retrying cannot mend (the token)
)

type event struct {
	kind    eventKind
	entries []observed.LogEntry // evHistory
	entry   observed.LogEntry   // evLine
	err     error               // evLost, evGaveUp
}

// maxRetry caps the wait between reconnections.
const maxRetry = 5 * time.Second

func startSource(ctx context.Context, spec copySpec, q Query, opt Options, notify chan<- struct{}) *source {
	ctx, cancel := context.WithCancel(ctx)
	s := &source{spec: spec, q: q, opt: opt, notify: notify, cancel: cancel, done: make(chan struct{}), gone: spec.gone}
	cl, err := clientOf(spec, opt)
	if err != nil {
		s.post(event{kind: evGaveUp, err: err})
		close(s.done)
		return s
	}
	s.client = cl
	go s.run(ctx)
	return s
}

func (s *source) run(ctx context.Context) {
	defer close(s.done)
	wait := s.opt.Retry
	for ctx.Err() == nil && !s.isRetired() {
		opened, err := s.connect(ctx)
		switch {
		case ctx.Err() != nil || s.isRetired():
			return
		case observed.IsPermanent(err):
			s.post(event{kind: evGaveUp, err: err})
			return
		case opened:
			wait = s.opt.Retry
		}
		select {
		case <-ctx.Done():
			return
		case <-s.opt.Clock.After(wait):
		}
		wait = min(2*wait, maxRetry)
	}
}

// connect reads one connection: the stream opened, the history, then
// the stream's lines until it ends. It reports whether the history came.
func (s *source) connect(ctx context.Context) (bool, error) {
	st, err := s.client.OpenLogStream(ctx, s.spec.filter(s.q.Level), s.opt.StreamIdle)
	if err != nil {
		s.post(event{kind: evLost, err: err})
		return false, err
	}
	s.setStream(st)
	defer func() { s.setStream(nil); st.Close() }()
	hist, err := s.client.Logs(ctx, observed.LogQuery{LogFilter: s.spec.filter(s.q.Level), Search: s.q.Grep})
	if err != nil {
		s.post(event{kind: evLost, err: err})
		return false, err
	}
	s.post(event{kind: evHistory, entries: slices.DeleteFunc(hist, func(e observed.LogEntry) bool { return !s.q.keeps(e) })})
	for {
		e, err := st.Next()
		if err != nil {
			s.post(event{kind: evLost, err: err})
			return true, err
		}
		if s.q.keeps(e) {
			s.post(event{kind: evLine, entry: e})
		}
	}
}

// post queues an event. A history replaces one not yet taken, with what
// came after it: the newer history holds those lines too. Lines beyond
// MaxPerCopy drop the oldest queued.
func (s *source) post(ev event) {
	s.mu.Lock()
	switch ev.kind {
	case evHistory:
		if i := slices.IndexFunc(s.queue, func(e event) bool { return e.kind == evHistory }); i >= 0 {
			for _, e := range s.queue[i:] {
				if e.kind == evLine {
					s.lines--
				}
			}
			s.queue = s.queue[:i]
		}
	case evLine:
		if s.lines >= s.opt.MaxPerCopy {
			i := slices.IndexFunc(s.queue, func(e event) bool { return e.kind == evLine })
			s.queue = slices.Delete(s.queue, i, i+1)
			s.lines--
			s.dropped++
		}
		s.lines++
	}
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// take hands the queue over, with how many lines were dropped.
func (s *source) take() ([]event, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, d := s.queue, s.dropped
	s.queue, s.lines, s.dropped = nil, 0, 0
	return q, d
}

func (s *source) setStream(st *observed.LogStream) {
	s.mu.Lock()
	s.stream = st
	s.mu.Unlock()
}

// kick ends the open connection, so that the source connects again.
func (s *source) kick() {
	s.mu.Lock()
	st := s.stream
	s.mu.Unlock()
	if st != nil {
		st.Close()
	}
}

// setRetired(true) lets the source read until its stream ends, then
// stop; false takes it back.
func (s *source) setRetired(r bool) {
	s.mu.Lock()
	s.retired = r
	s.mu.Unlock()
}

func (s *source) isRetired() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retired
}

// ended reports whether the source has stopped reading.
func (s *source) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop ends the source and waits for it.
func (s *source) stop() {
	s.cancel()
	<-s.done
}
