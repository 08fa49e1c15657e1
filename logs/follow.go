package logs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slum-fleet/slum"
)

// dedupeWindow is how far back (ms) each copy's written lines are
// remembered, to recognise them in a new connection's history.
const dedupeWindow = 5_000

// retireGrace is how long a copy that is no longer one is still read: its
// last lines (a moved copy being stopped) arrive, then its stream closes.
const retireGrace = 5 * time.Second

// Follow writes the lines the servers keep of q's copies, merged as
// Gather does, then their new lines as they come, until ctx ends or the
// tenant (or instance) is removed. It reads the fleet every PollEvery: a
// copy that appears (a failover, a move, a new instance) is followed at
// once, from the lines its server kept; one no longer a copy is read for
// a few seconds more; lines of copies whose server is dead, or that are
// no longer where their instance runs, are marked.
func Follow(ctx context.Context, f Fleet, q Query, opt Options, out Output) error {
	if err := q.Validate(); err != nil {
		return err
	}
	opt = opt.withDefaults()
	view, err := readFleet(ctx, f, q)
	if err != nil {
		return err
	}
	fl := &follower{f: f, q: q, opt: opt, out: out, notify: make(chan struct{}, 1),
		sources: map[copyKey]*source{}, dedupes: map[copyKey]*dedupe{}, waiting: map[copyKey]bool{}}
	if out.Started != nil {
		if err := out.Started(); err != nil {
			return err
		}
	}
	defer fl.stopAll()
	if err := fl.begin(ctx, view); err != nil {
		return err
	}
	return fl.loop(ctx)
}

// follower is one Follow's state, owned by its goroutine.
type follower struct {
	f      Fleet
	q      Query
	opt    Options
	out    Output
	ctx    context.Context
	notify chan struct{}

	sources map[copyKey]*source
	dedupes map[copyKey]*dedupe // kept for copies that come and go, so a copy back on a server repeats nothing

	// Until live, histories are gathered into initial (waiting: copies
	// whose first history has not come) and written merged.
	live    bool
	waiting map[copyKey]bool
	initial [][]Line

	pending  []pendingLine // lines waiting for their window
	seq      uint64
	fleetErr string // the last failure to read the fleet that was said
}

// pendingLine is a line held for lines of other copies older than it.
type pendingLine struct {
	line Line
	due  time.Time
	seq  uint64
}

// begin starts reading every copy and writes their histories merged,
// once each has brought its own or failed (or a timeout has passed).
func (fl *follower) begin(ctx context.Context, view fleetView) error {
	fl.ctx = ctx
	for _, c := range view.copies {
		fl.start(c)
		fl.waiting[c.key] = true
	}
	if len(view.copies) == 0 {
		if err := fl.notice("", "tenant "+fl.q.Tenant+" has no copy on any server yet: waiting for one"); err != nil {
			return err
		}
	}
	deadline := fl.opt.Clock.After(fl.opt.Timeout + time.Second)
	for len(fl.waiting) > 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline:
			fl.waiting = map[copyKey]bool{}
		case <-fl.notify:
			if err := fl.drain(); err != nil {
				return err
			}
		}
	}
	lists := append(fl.initial, fl.takePending())
	fl.initial, fl.live = nil, true
	for _, l := range newest(merge(lists), fl.q.Lines) {
		if err := fl.out.Line(l); err != nil {
			return err
		}
	}
	return nil
}

// loop follows until ctx ends. Held lines are written when the first is
// due, at most every quarter window (each write sorts what is held), or at
// once beyond MaxPending.
func (fl *follower) loop(ctx context.Context) error {
	poll := fl.opt.Clock.After(fl.opt.PollEvery)
	var flush <-chan time.Time
	var flushed time.Time
	for {
		select {
		case <-ctx.Done():
			return fl.flush(true)
		case <-poll:
			over, err := fl.poll(ctx)
			if err != nil || over {
				return errors.Join(err, fl.flush(true))
			}
			poll = fl.opt.Clock.After(fl.opt.PollEvery)
		case <-fl.notify:
			if err := fl.drain(); err != nil {
				return err
			}
		case <-flush:
			flush, flushed = nil, fl.opt.Clock.Now()
			if err := fl.flush(false); err != nil {
				return err
			}
		}
		if len(fl.pending) > fl.opt.MaxPending {
			if err := fl.flush(false); err != nil {
				return err
			}
		}
		if flush == nil && len(fl.pending) > 0 {
			at := fl.pending[0].due
			if next := flushed.Add(fl.opt.Window / 4); next.After(at) {
				at = next
			}
			flush = fl.opt.Clock.After(at.Sub(fl.opt.Clock.Now()))
		}
	}
}

func (fl *follower) start(c copySpec) {
	fl.sources[c.key] = startSource(fl.ctx, c, fl.q, fl.opt, fl.notify)
	if fl.dedupes[c.key] == nil {
		fl.dedupes[c.key] = newDedupe(dedupeWindow, fl.opt.MaxPerCopy)
	}
}

func (fl *follower) stopAll() {
	for _, s := range fl.sources {
		s.cancel()
	}
	for _, s := range fl.sources {
		<-s.done
	}
}

// poll reads the fleet and follows what changed; over: nothing is left
// to follow.
func (fl *follower) poll(ctx context.Context) (over bool, err error) {
	view, err := readFleet(ctx, fl.f, fl.q)
	switch {
	case errors.Is(err, slum.ErrNotFound):
		return true, fl.notice("", err.Error()+": nothing more to follow")
	case err != nil && ctx.Err() == nil:
		if msg := err.Error(); msg != fl.fleetErr {
			fl.fleetErr = msg
			return false, fl.notice("", "cannot read the fleet ("+msg+"): following the copies known")
		}
		return false, nil
	case err != nil:
		return false, nil
	}
	fl.fleetErr = ""
	return false, fl.follow(view)
}

// follow starts reading new copies, marks the lines of copies whose state
// changed, and retires those no longer copies.
func (fl *follower) follow(view fleetView) error {
	now := fl.opt.Clock.Now()
	want := map[copyKey]bool{}
	for _, c := range view.copies {
		want[c.key] = true
		s, ok := fl.sources[c.key]
		switch {
		case !ok:
			fl.start(c)
			if err := fl.notice(c.key.String(), "a new copy: following it"); err != nil {
				return err
			}
			continue
		case s.spec.url != c.url || s.spec.token != c.token:
			s.stop()
			fl.start(c)
			if err := fl.notice(c.key.String(), "its server's address or token changed: reading it again"); err != nil {
				return err
			}
			continue
		case s.isRetired() && s.ended():
			fl.start(c)
			if err := fl.notice(c.key.String(), "a copy again: following it"); err != nil {
				return err
			}
			continue
		case s.isRetired():
			s.setRetired(false)
			s.retireAt = time.Time{}
		}
		if c.gone != s.gone {
			if strings.HasSuffix(c.gone, " is dead") {
				// A server declared dead may hold the stream open without
				// sending (tenement stopping on SIGTERM): connect again.
				s.kick()
			}
			msg := cmp.Or(c.gone, "where it should be again")
			s.gone = c.gone
			if err := fl.notice(c.key.String(), msg); err != nil {
				return err
			}
		}
	}
	for key, s := range fl.sources {
		switch {
		case !want[key] && !s.isRetired():
			s.setRetired(true)
			s.retireAt = now.Add(retireGrace)
			s.gone = "no longer a copy of " + fl.q.Tenant
			if server := view.placed[key.instance]; server != "" {
				s.gone = "an old copy: " + key.instance + " runs on " + server
			}
			if err := fl.notice(key.String(), s.gone+": reading its last lines"); err != nil {
				return err
			}
		case s.isRetired() && !now.Before(s.retireAt):
			s.stop()
			delete(fl.sources, key)
		}
	}
	return nil
}

// drain takes what every source queued.
func (fl *follower) drain() error {
	for key, s := range fl.sources {
		evs, dropped := s.take()
		if dropped > 0 {
			if err := fl.notice(key.String(), fmt.Sprintf("%d lines dropped: more than %d were waiting", dropped, fl.opt.MaxPerCopy)); err != nil {
				return err
			}
		}
		for _, ev := range evs {
			if err := fl.handle(key, s, ev); err != nil {
				return err
			}
		}
	}
	return nil
}

func (fl *follower) handle(key copyKey, s *source, ev event) error {
	d := fl.dedupes[key]
	spec := s.spec
	spec.gone = s.gone
	switch ev.kind {
	case evHistory:
		fresh := spec.lines(d.history(ev.entries), fl.q, fl.opt.MaxPerCopy)
		wasLost := s.lost
		s.lost = false
		if fl.waiting[key] {
			delete(fl.waiting, key)
			fl.initial = append(fl.initial, fresh)
		} else {
			fl.pend(fresh)
		}
		if wasLost {
			return fl.notice(key.String(), "connected again")
		}
	case evLine:
		if d.stream(ev.entry) {
			fl.pend([]Line{spec.line(ev.entry)})
		}
	case evLost:
		delete(fl.waiting, key)
		if s.lost || s.isRetired() {
			return nil
		}
		s.lost = true
		return fl.notice(key.String(), "lost its log stream ("+ev.err.Error()+"): connecting again")
	case evGaveUp:
		delete(fl.waiting, key)
		return fl.notice(key.String(), "cannot read its lines: "+ev.err.Error())
	}
	return nil
}

// pend holds lines for their window; beyond MaxPending the oldest are
// written at once.
func (fl *follower) pend(lines []Line) {
	due := fl.opt.Clock.Now().Add(fl.opt.Window)
	for _, l := range lines {
		fl.seq++
		fl.pending = append(fl.pending, pendingLine{line: l, due: due, seq: fl.seq})
	}
}

// flush writes the lines whose window has passed, with every line older
// than the newest of them, in time order; all of them with all. Beyond
// MaxPending, the oldest go too. pending stays in the order lines came,
// so that its first is the next due.
func (fl *follower) flush(all bool) error {
	if !fl.live || len(fl.pending) == 0 {
		return nil
	}
	now := fl.opt.Clock.Now()
	var cut time.Time
	for _, p := range fl.pending {
		if (all || !p.due.After(now)) && p.line.Time.After(cut) {
			cut = p.line.Time
		}
	}
	byTime := func(a, b pendingLine) int {
		return cmp.Or(a.line.Time.Compare(b.line.Time), cmp.Compare(a.seq, b.seq))
	}
	slices.SortFunc(fl.pending, byTime)
	n := 0
	for n < len(fl.pending) && (!fl.pending[n].line.Time.After(cut) || len(fl.pending)-n > fl.opt.MaxPending) {
		n++
	}
	emit := fl.pending[:n]
	fl.pending = slices.Clone(fl.pending[n:])
	slices.SortFunc(fl.pending, func(a, b pendingLine) int { return cmp.Compare(a.seq, b.seq) })
	for _, p := range emit {
		if err := fl.out.Line(p.line); err != nil {
			return err
		}
	}
	return nil
}

// takePending hands the held lines over in time order, holding none.
func (fl *follower) takePending() []Line {
	out := make([]Line, len(fl.pending))
	for i, p := range fl.pending {
		out[i] = p.line
	}
	fl.pending = nil
	sortCopy(out)
	return out
}

func (fl *follower) notice(copy, msg string) error {
	return fl.out.Notice(Notice{Time: fl.opt.Clock.Now().UTC(), Copy: copy, Message: msg})
}
