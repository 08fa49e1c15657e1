package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/clock"
)

// The watch: one goroutine (watcher.run) follows the database. It reads
// the whole fleet once, then polls the change log (which triggers fill
// on every write; on the controller's status writes only while a watcher
// keeps the log, see changeLogKeep) and reads only the objects it names, plus the open
// holds and new events; it remakes only the objects those touch and
// publishes what changed as a node of an append-only list. When the log
// no longer reaches back to its last poll it reads the whole fleet
// again and diffs it with what it had. Each
// stream follows the list on its own, so a slow client never holds up
// the watcher or another client; the watcher keeps the latest nodes so a
// client that reconnects gets what it missed, and nothing more.

// node is one published batch of changes. Once published it never
// changes, except that next is set (then ready closed) when the following
// batch is published.
type node struct {
	seq     int64
	batch   wire.Batch
	frame   []byte // the SSE message for a client of every kind
	next    *node
	ready   chan struct{}
	byKinds frameCache // the message for clients of some kinds only
}

// frameCache keeps a message rendered once for each set of kinds asked
// for, so streams that ask alike share the bytes.
type frameCache struct {
	mu sync.Mutex
	by map[string][]byte
}

// get renders the message for kinds unless a stream did already; one
// that asks meanwhile waits for it rather than rendering it again.
func (c *frameCache) get(kinds map[wire.ObjectKind]bool, render func() []byte) []byte {
	ks := make([]string, 0, len(kinds))
	for k := range kinds {
		ks = append(ks, string(k))
	}
	slices.Sort(ks)
	key := strings.Join(ks, ",")
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.by[key]; ok {
		return f
	}
	if c.by == nil {
		c.by = map[string][]byte{}
	}
	f := render()
	c.by[key] = f
	return f
}

func newNode(seq int64) *node { return &node{seq: seq, ready: make(chan struct{})} }

// subscription is where a stream starts: a reset, or the batches since
// the client's last message, then the list after cursor. The stream
// renders them itself, so a reset of a large fleet never holds up the
// watcher.
type subscription struct {
	reset  *resetSource
	replay []*node
	cursor *node
}

// resetSource is what a reset is made of: a view (never changed once
// built) and the events and revisions that go with it.
type resetSource struct {
	stream         string
	seq, rev, srev int64
	view           *view
	events         []slum.Event
	frames         frameCache // made by the first stream that needs each
}

// frame is the reset message for a client of kinds (nil: every kind).
func (r *resetSource) frame(kinds map[wire.ObjectKind]bool) []byte {
	return r.frames.get(kinds, func() []byte { return r.render(kinds) })
}

func (r *resetSource) render(kinds map[wire.ObjectKind]bool) []byte {
	msg := wire.Reset{Stream: r.stream, Seq: r.seq, Revision: r.rev, StatusRevision: r.srev, Objects: []wire.Change{}, Events: []slum.Event{}}
	r.view.each(kinds, func(kind wire.ObjectKind, id string, obj []byte) {
		msg.Objects = append(msg.Objects, wire.Change{Kind: kind, ID: id, Op: wire.OpPut, Object: obj})
	})
	if kinds == nil || kinds[wire.ObjEvent] {
		msg.Events = append(msg.Events, r.events...)
	}
	return sseFrame(wire.EventReset, wire.EventID(r.stream, r.seq), msg)
}

type subscribeReq struct {
	since string
	kinds map[wire.ObjectKind]bool // nil: every kind
	reply chan subscription
}

// recentEvents is how many events a reset carries.
const recentEvents = 100

type watcher struct {
	st      Store
	every   time.Duration
	history int
	clock   clock.Clock
	log     *slog.Logger
	stream  string // this watcher's id: event ids of another stream are reset
	subs    chan subscribeReq
	latest  atomic.Int64 // the newest node's seq, for streams to see how far behind they are
}

func newWatcher(st Store, cfg Config) *watcher {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &watcher{st: st, every: cfg.WatchEvery, history: cfg.WatchHistory, clock: cfg.Clock, log: cfg.Log,
		stream: hex.EncodeToString(b), subs: make(chan subscribeReq)}
}

// watchState is what the watcher's goroutine owns.
type watchState struct {
	view      *view
	rev, srev int64
	holds     []byte // the open holds as last read, to notice changes no revision counts
	lastEvent int64
	events    []slum.Event // the latest recentEvents
	tail      *node
	ring      []*node      // the latest nodes, oldest first
	reset     *resetSource // the reset at tail, once asked for
	fleet     *fleet       // nil until read whole (again)
	seq       int64        // the change log's position fleet is up to date with
	logUntil  int64        // the controller's status is logged until then (ms, SQLite's clock)
}

// changeLogKeep is how long each renewal keeps the controller's status
// changes logged; the watcher renews when less than changeLogRenew is left,
// so a lapse (and a whole read) takes a watcher stalled for longer than
// their difference.
const (
	changeLogKeep  = 30 * time.Second
	changeLogRenew = 25 * time.Second
)

// subscribe asks the watcher where a stream starts.
func (w *watcher) subscribe(ctx context.Context, since string, kinds map[wire.ObjectKind]bool) (subscription, error) {
	req := subscribeReq{since: since, kinds: kinds, reply: make(chan subscription, 1)}
	select {
	case w.subs <- req:
	case <-ctx.Done():
		return subscription{}, ctx.Err()
	}
	select {
	case sub := <-req.reply:
		return sub, nil
	case <-ctx.Done():
		return subscription{}, ctx.Err()
	}
}

func (w *watcher) run(ctx context.Context) {
	st := &watchState{rev: -1, srev: -1, tail: newNode(0)}
	// Events already written show in resets, not as news.
	if evs, err := w.st.RecentEvents(ctx, recentEvents); err == nil {
		st.events = evs
		if len(evs) > 0 {
			st.lastEvent = evs[len(evs)-1].ID
		}
	}
	var faults pollFaults
	poll := func() {
		err := w.poll(ctx, st)
		if ctx.Err() != nil {
			return
		}
		now := w.clock.Now()
		if err != nil {
			if faults.fail(now, err) {
				w.log.Warn("watch: cannot read the fleet: streams show nothing new until it can", "err", err, "since", faults.since)
			}
			return
		}
		if d, was := faults.recover(now); was {
			w.log.Info("watch: reading the fleet again", "after", d.Round(time.Millisecond))
		}
	}
	poll()
	tick := w.clock.After(faults.wait(w.every))
	feed := slum.Changes(ctx, w.st) // a commit is looked at once, not at the next tick
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-w.subs:
			// Catch up first: a client that just changed something sees
			// it in its first message.
			poll()
			req.reply <- w.answer(st, req)
		case <-tick:
			poll()
			tick = w.clock.After(faults.wait(w.every))
		case <-feed:
			if faults.n == 0 { // while polls fail, the tick retries them
				poll()
			}
		}
	}
}

// pollFaults is a run of the watcher's polls that failed (the database
// cannot be read, or its file is gone and the change log cannot be kept):
// logged when it starts, when its cause changes and once a minute, and
// polled less often while it lasts (every 10 ms, each a failed write,
// would flood the log and take a core).
type pollFaults struct {
	n           int // polls failed in a row
	since, told time.Time
	last        string // the error last logged
}

// maxPollWait bounds the wait between polls while they fail.
const maxPollWait = time.Second

// fail counts a failed poll and says whether to log it.
func (f *pollFaults) fail(now time.Time, err error) (tell bool) {
	if f.n == 0 {
		f.since = now
	}
	f.n++
	if tell = f.n == 1 || err.Error() != f.last || now.Sub(f.told) >= time.Minute; tell {
		f.told, f.last = now, err.Error()
	}
	return tell
}

// recover ends a run of failures, if there was one, and says how long it
// lasted.
func (f *pollFaults) recover(now time.Time) (time.Duration, bool) {
	if f.n == 0 {
		return 0, false
	}
	d := now.Sub(f.since)
	*f = pollFaults{}
	return d, true
}

// wait is how long until the next poll: every, doubled for each failure
// in a row, at most maxPollWait.
func (f *pollFaults) wait(every time.Duration) time.Duration {
	d := every
	for i := 0; i < f.n && d < maxPollWait; i++ {
		d *= 2
	}
	return min(d, max(every, maxPollWait))
}

// answer starts a stream: after the client's last message when the
// watcher still has everything since, else with a reset.
func (w *watcher) answer(st *watchState, req subscribeReq) subscription {
	sub := subscription{cursor: st.tail}
	if req.since != "" {
		stream, seq, err := wire.ParseEventID(req.since)
		oldest := st.tail.seq
		if len(st.ring) > 0 {
			oldest = st.ring[0].seq
		}
		if err == nil && stream == w.stream && seq <= st.tail.seq && seq >= oldest-1 {
			for _, n := range st.ring {
				if n.seq > seq {
					sub.replay = append(sub.replay, n)
				}
			}
			return sub
		}
	}
	if st.reset == nil {
		if st.view != nil {
			st.view.shared = true // the stream renders it while the watcher goes on
		}
		st.reset = &resetSource{stream: w.stream, seq: st.tail.seq, rev: st.rev, srev: st.srev, view: st.view, events: slices.Clone(st.events)}
	}
	sub.reset = st.reset
	return sub
}

// frameFor is n's message for a client of kinds. A batch with nothing of
// those kinds still moves the client's event id on.
func frameFor(stream string, n *node, kinds map[wire.ObjectKind]bool) []byte {
	if kinds == nil {
		return n.frame
	}
	return n.byKinds.get(kinds, func() []byte { return renderFor(stream, n, kinds) })
}

func renderFor(stream string, n *node, kinds map[wire.ObjectKind]bool) []byte {
	b := n.batch
	b.Changes = nil
	for _, c := range n.batch.Changes {
		if kinds[c.Kind] {
			b.Changes = append(b.Changes, c)
		}
	}
	if !kinds[wire.ObjEvent] {
		b.Events = nil
	}
	id := wire.EventID(stream, n.seq)
	if len(b.Changes) == 0 && len(b.Events) == 0 {
		return []byte("id: " + id + "\n\n")
	}
	if b.Changes == nil {
		b.Changes = []wire.Change{}
	}
	return sseFrame(wire.EventChanges, id, b)
}

func sseFrame(event, id string, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte(`{}`)
	}
	var b bytes.Buffer
	b.Grow(len(data) + len(id) + len(event) + 24)
	b.WriteString("id: ")
	b.WriteString(id)
	b.WriteString("\nevent: ")
	b.WriteString(event)
	b.WriteString("\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	return b.Bytes()
}

// poll looks for changes and publishes them. The fleet is read whole the
// first time, and again only when the change log no longer says what
// changed since the last poll; otherwise only what changed is read.
func (w *watcher) poll(ctx context.Context, st *watchState) error {
	// The wall clock, not the injected one: the triggers read SQLite's,
	// which is this host's.
	if time.Until(time.UnixMilli(st.logUntil)) < changeLogRenew {
		until, lapsed, err := w.st.KeepChangeLog(ctx, changeLogKeep, st.logUntil)
		if err != nil {
			return err
		}
		st.logUntil = until
		if lapsed {
			st.fleet = nil // status changes may have gone unlogged: read it all
		}
	}
	rev, err := w.st.Revision(ctx)
	if err != nil {
		return err
	}
	srev, err := w.st.StatusRevision(ctx)
	if err != nil {
		return err
	}
	holds, err := w.st.OpenHolds(ctx)
	if err != nil {
		return err
	}
	holdsJSON, _ := json.Marshal(holds)
	// The events' position moves on only once they are published: a read
	// below that fails leaves them for the next poll.
	var evs []slum.Event
	lastEvent := st.lastEvent
	for {
		more, err := w.st.Events(ctx, lastEvent, 1000)
		if err != nil {
			return err
		}
		evs = append(evs, more...)
		if len(more) > 0 {
			lastEvent = more[len(more)-1].ID
		}
		if len(more) < 1000 {
			break
		}
	}
	var d *dirty // nil: everything
	if st.fleet != nil {
		c, err := w.st.ChangedSince(ctx, st.seq, maxChanges(st.fleet))
		switch {
		case errors.Is(err, slum.ErrChangesGone):
			if errors.Is(err, slum.ErrUnknownChange) {
				w.log.Warn("watch: reading the whole fleet", "err", err)
			}
			st.fleet = nil
		case err != nil:
			return err
		default:
			st.seq = c.Seq
			d = st.fleet.apply(c)
		}
	}
	if st.fleet == nil {
		f, seq, err := w.readAll(ctx)
		if err != nil {
			return err
		}
		st.fleet, st.seq = f, seq
	} else if d.empty() && rev == st.rev && srev == st.srev && bytes.Equal(holdsJSON, st.holds) && len(evs) == 0 {
		return nil
	}
	v, changes := makeView(st.view, st.fleet, holds, d)
	st.holds = holdsJSON
	st.view, st.rev, st.srev = v, rev, srev
	if len(evs) > 0 {
		st.lastEvent = lastEvent
		st.events = append(st.events, evs...)
		if n := len(st.events); n > recentEvents {
			st.events = slices.Clone(st.events[n-recentEvents:])
		}
	}
	if len(changes) == 0 && len(evs) == 0 {
		return nil
	}
	w.publish(st, wire.Batch{Revision: rev, StatusRevision: srev, Changes: changes, Events: evs})
	return nil
}

// maxChanges is how many writes since the last poll are read one by one;
// after more, the whole fleet is read again, which is then about as quick.
func maxChanges(f *fleet) int {
	return max(1000, (len(f.instances)+len(f.tenants))/10)
}

// readAll reads the whole fleet, and the change log's position it is up
// to date with (read first: a write in between is read again next time).
func (w *watcher) readAll(ctx context.Context) (*fleet, int64, error) {
	seq, err := w.st.ChangeSeq(ctx)
	if err != nil {
		return nil, 0, err
	}
	snap, err := w.st.Snapshot(ctx)
	if err != nil {
		return nil, 0, err
	}
	stats, err := w.st.AllServerStats(ctx)
	if err != nil {
		return nil, 0, err
	}
	sstat, err := w.st.ListServerStatus(ctx)
	if err != nil {
		return nil, 0, err
	}
	tstat, err := w.st.ListTenantStatus(ctx)
	if err != nil {
		return nil, 0, err
	}
	istat, err := w.st.ListInstanceStatus(ctx)
	if err != nil {
		return nil, 0, err
	}
	return newFleet(snap, stats, sstat, tstat, istat), seq, nil
}

func (w *watcher) publish(st *watchState, b wire.Batch) {
	n := newNode(st.tail.seq + 1)
	b.Seq = n.seq
	n.batch = b
	n.frame = sseFrame(wire.EventChanges, wire.EventID(w.stream, n.seq), b)
	prev := st.tail
	st.tail, st.reset = n, nil
	st.ring = append(st.ring, n)
	if len(st.ring) > w.history {
		st.ring[0] = nil
		st.ring = st.ring[1:]
	}
	prev.next = n
	w.latest.Store(n.seq)
	close(prev.ready)
}

// serveWatch streams the watch to one client.
func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request) error {
	kinds, err := wire.ParseKinds(r.URL.Query().Get("kinds"))
	if err != nil {
		return err
	}
	if c := callerOf(r.Context()); c.token.Role == slum.RoleRouter {
		for k := range kinds {
			if k != wire.ObjRoute {
				return &errBody{wire.KindForbidden, fmt.Sprintf("%s has role router: it may watch routes only (?kinds=route)", c)}
			}
		}
		kinds = map[wire.ObjectKind]bool{wire.ObjRoute: true}
	}
	since := r.Header.Get("Last-Event-ID")
	if r.URL.Query().Has("since") {
		since = r.URL.Query().Get("since")
	}
	if since != "" {
		if _, _, err := wire.ParseEventID(since); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if c := callerOf(ctx); !c.noAuth {
		defer s.streams.add(c.token.ID, cancel)()
	}
	sub, err := s.watch.subscribe(ctx, since, kinds)
	if err != nil {
		return nil // the client left
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// A client that stops reading is dropped rather than kept forever.
	write := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := w.Write(b)
		return err
	}
	if err := write([]byte("retry: 1000\n\n")); err != nil {
		return nil
	}
	keepalive := time.NewTicker(s.cfg.Keepalive)
	defer keepalive.Stop()
	var frames [][]byte
	for {
		if sub.reset != nil {
			frames = append(frames, sub.reset.frame(kinds))
		}
		for _, n := range sub.replay {
			frames = append(frames, frameFor(s.watch.stream, n, kinds))
		}
		sub.reset, sub.replay = nil, nil
		for _, f := range frames {
			if err := write(f); err != nil {
				return nil
			}
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
		frames = frames[:0]
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil
		case <-keepalive.C:
			frames = append(frames, []byte(": keepalive\n\n"))
		case <-sub.cursor.ready:
			cur := sub.cursor.next
			if s.watch.latest.Load()-cur.seq > int64(s.cfg.WatchHistory) {
				// Too far behind to catch up batch by batch: start over.
				if sub, err = s.watch.subscribe(ctx, "", kinds); err != nil {
					return nil
				}
				continue
			}
			sub.cursor = cur
			frames = append(frames, frameFor(s.watch.stream, cur, kinds))
		}
	}
}
