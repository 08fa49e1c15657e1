package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/slum-fleet/slum/api/wire"
	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/desired"
	"github.com/slum-fleet/slum/observed"
	"github.com/slum-fleet/slum/routes"
)

// The watch: one goroutine (watcher.run) follows the database. When the
// desired revision, the status revision, the open holds or the event log
// change, it rebuilds the fleet as objects, diffs them with the last ones
// and publishes what changed as a node of an append-only list. Each
// stream follows the list on its own, so a slow client never holds up
// the watcher or another client; the watcher keeps the latest nodes so a
// client that reconnects gets what it missed, and nothing more.

// node is one published batch of changes. Once published it never
// changes, except that next is set (then ready closed) when the following
// batch is published.
type node struct {
	seq   int64
	batch wire.Batch
	frame []byte // the SSE message for a client of every kind
	next  *node
	ready chan struct{}
}

func newNode(seq int64) *node { return &node{seq: seq, ready: make(chan struct{})} }

type objKey struct {
	kind wire.ObjectKind
	id   string
}

// view is the fleet as objects, each as JSON. A view is never changed
// once built: the next poll builds a new one.
type view map[objKey]json.RawMessage

// subscription is where a stream starts: the messages to send first (a
// reset, or the batches since the client's last), and the node after
// which it follows the list.
type subscription struct {
	frames [][]byte
	cursor *node
}

type subscribeReq struct {
	since string
	kinds map[wire.ObjectKind]bool // nil: every kind
	reply chan subscription
}

// recentEvents is how many events a reset carries.
const recentEvents = 100

type watcher struct {
	st      *desired.Store
	every   time.Duration
	history int
	clock   clock.Clock
	log     *slog.Logger
	stream  string // this watcher's id: event ids of another stream are reset
	subs    chan subscribeReq
	latest  atomic.Int64 // the newest node's seq, for streams to see how far behind they are
}

func newWatcher(st *desired.Store, cfg Config) *watcher {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &watcher{st: st, every: cfg.WatchEvery, history: cfg.WatchHistory, clock: cfg.Clock, log: cfg.Log,
		stream: hex.EncodeToString(b), subs: make(chan subscribeReq)}
}

// watchState is what the watcher's goroutine owns.
type watchState struct {
	view           view
	rev, srev      int64
	holds          []byte // the open holds as last read, to notice changes no revision counts
	lastEvent      int64
	events         []desired.Event // the latest recentEvents
	tail           *node
	ring           []*node // the latest nodes, oldest first
	reset          []byte  // the reset message for every kind at tail, once made
	snap           *desired.Snapshot
	stats          []desired.ServerStats
	statusRev      int64
	sstat          []desired.ServerStatus
	tstat          []desired.TenantStatus
	istat          []desired.InstanceStatus
	snapRevChecked int64
}

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
	st := &watchState{rev: -1, srev: -1, statusRev: -1, snapRevChecked: -1, tail: newNode(0)}
	// Events already written show in resets, not as news.
	if evs, err := w.st.RecentEvents(ctx, recentEvents); err == nil {
		st.events = evs
		if len(evs) > 0 {
			st.lastEvent = evs[len(evs)-1].ID
		}
	}
	if err := w.poll(ctx, st); err != nil && ctx.Err() == nil {
		w.log.Warn("watch: read the fleet", "err", err)
	}
	tick := w.clock.After(w.every)
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-w.subs:
			// Catch up first: a client that just changed something sees
			// it in its first message.
			if err := w.poll(ctx, st); err != nil && ctx.Err() == nil {
				w.log.Warn("watch: read the fleet", "err", err)
			}
			req.reply <- w.answer(st, req)
		case <-tick:
			if err := w.poll(ctx, st); err != nil && ctx.Err() == nil {
				w.log.Warn("watch: read the fleet", "err", err)
			}
			tick = w.clock.After(w.every)
		}
	}
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
					sub.frames = append(sub.frames, frameFor(w.stream, n, req.kinds))
				}
			}
			return sub
		}
	}
	if req.kinds == nil {
		if st.reset == nil {
			st.reset = w.resetFrame(st, nil)
		}
		sub.frames = [][]byte{st.reset}
	} else {
		sub.frames = [][]byte{w.resetFrame(st, req.kinds)}
	}
	return sub
}

func (w *watcher) resetFrame(st *watchState, kinds map[wire.ObjectKind]bool) []byte {
	r := wire.Reset{Stream: w.stream, Seq: st.tail.seq, Revision: st.rev, StatusRevision: st.srev, Objects: []wire.Change{}, Events: []desired.Event{}}
	for k, obj := range st.view {
		if kinds == nil || kinds[k.kind] {
			r.Objects = append(r.Objects, wire.Change{Kind: k.kind, ID: k.id, Op: wire.OpPut, Object: obj})
		}
	}
	sortChanges(r.Objects)
	if kinds == nil || kinds[wire.ObjEvent] {
		r.Events = append(r.Events, st.events...)
	}
	return sseFrame(wire.EventReset, wire.EventID(w.stream, st.tail.seq), r)
}

// frameFor is n's message for a client of kinds. A batch with nothing of
// those kinds still moves the client's event id on.
func frameFor(stream string, n *node, kinds map[wire.ObjectKind]bool) []byte {
	if kinds == nil {
		return n.frame
	}
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

// poll looks for changes and publishes them.
func (w *watcher) poll(ctx context.Context, st *watchState) error {
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
	var evs []desired.Event
	for {
		more, err := w.st.Events(ctx, st.lastEvent, 1000)
		if err != nil {
			return err
		}
		evs = append(evs, more...)
		if len(more) > 0 {
			st.lastEvent = more[len(more)-1].ID
		}
		if len(more) < 1000 {
			break
		}
	}
	if rev == st.rev && srev == st.srev && bytes.Equal(holdsJSON, st.holds) && len(evs) == 0 {
		return nil
	}
	v, err := w.build(ctx, st, rev, srev, holds)
	if err != nil {
		return err
	}
	st.holds = holdsJSON
	changes := diff(st.view, v)
	st.view, st.rev, st.srev = v, rev, srev
	if len(evs) > 0 {
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

// build reads the fleet and makes its objects. Desired state is read
// again only when its revision moved, status only when its revision did.
func (w *watcher) build(ctx context.Context, st *watchState, rev, srev int64, holds []desired.Hold) (view, error) {
	if st.snap == nil || rev != st.snapRevChecked {
		snap, err := w.st.Snapshot(ctx)
		if err != nil {
			return nil, err
		}
		stats, err := w.st.AllServerStats(ctx)
		if err != nil {
			return nil, err
		}
		st.snap, st.stats, st.snapRevChecked = snap, stats, rev
	}
	if srev != st.statusRev {
		sstat, err := w.st.ListServerStatus(ctx)
		if err != nil {
			return nil, err
		}
		tstat, err := w.st.ListTenantStatus(ctx)
		if err != nil {
			return nil, err
		}
		istat, err := w.st.ListInstanceStatus(ctx)
		if err != nil {
			return nil, err
		}
		st.sstat, st.tstat, st.istat, st.statusRev = sstat, tstat, istat, srev
	}
	return makeView(st.snap, st.stats, st.sstat, st.tstat, st.istat, holds), nil
}

// makeView turns what was read into objects: what the watch and its
// resets send.
func makeView(snap *desired.Snapshot, stats []desired.ServerStats, sstat []desired.ServerStatus,
	tstat []desired.TenantStatus, istat []desired.InstanceStatus, holds []desired.Hold) view {
	v := make(view, 1+len(snap.Servers)*2+len(snap.Tenants)*2+len(snap.Instances)+len(holds))
	put := func(kind wire.ObjectKind, id string, obj any) {
		b, err := json.Marshal(obj)
		if err != nil {
			return
		}
		v[objKey{kind, id}] = b
	}
	put(wire.ObjSettings, "fleet", snap.Settings)
	statsBy := make(map[string]desired.ServerStats, len(stats))
	for _, s := range stats {
		statsBy[s.ServerID] = s
	}
	sstatBy := make(map[string]*desired.ServerStatus, len(sstat))
	health := make(map[string]observed.Health, len(sstat))
	for i := range sstat {
		sstatBy[sstat[i].ServerID] = &sstat[i]
		health[sstat[i].ServerID] = sstat[i].Health
	}
	for _, s := range snap.Servers {
		put(wire.ObjServer, s.ID, wire.ServerView{Server: wire.NewServer(s), Stats: statsBy[s.ID], Status: sstatBy[s.ID]})
	}
	tstatBy := make(map[string]*desired.TenantStatus, len(tstat))
	serving := make(map[string]desired.TenantStatus, len(tstat))
	for i := range tstat {
		tstatBy[tstat[i].TenantID] = &tstat[i]
		serving[tstat[i].TenantID] = tstat[i]
	}
	for _, t := range snap.Tenants {
		put(wire.ObjTenant, t.ID, wire.TenantView{Tenant: t, Status: tstatBy[t.ID]})
	}
	istatBy := make(map[string]*desired.InstanceStatus, len(istat))
	for i := range istat {
		istatBy[istat[i].Key()] = &istat[i]
	}
	for _, in := range snap.Instances {
		put(wire.ObjInstance, in.Key(), wire.InstanceView{Instance: in, Key: in.Key(), Status: istatBy[in.Key()]})
	}
	for _, h := range holds {
		put(wire.ObjHold, fmt.Sprint(h.ID), h)
	}
	table := routes.Build(routes.Source{Revision: snap.Revision, Servers: snap.Servers, Health: health, Tenants: snap.Tenants,
		Instances: snap.Instances, Serving: serving})
	for _, r := range table.Routes() {
		put(wire.ObjRoute, r.Domain, r)
	}
	return v
}

// diff lists what changed from old to cur, in a stable order.
func diff(old, cur view) []wire.Change {
	var out []wire.Change
	for k, b := range cur {
		if ob, ok := old[k]; !ok || !bytes.Equal(ob, b) {
			out = append(out, wire.Change{Kind: k.kind, ID: k.id, Op: wire.OpPut, Object: b})
		}
	}
	for k := range old {
		if _, ok := cur[k]; !ok {
			out = append(out, wire.Change{Kind: k.kind, ID: k.id, Op: wire.OpDelete})
		}
	}
	sortChanges(out)
	return out
}

var kindOrder = func() map[wire.ObjectKind]int {
	m := map[wire.ObjectKind]int{}
	for i, k := range wire.ObjectKinds {
		m[k] = i
	}
	return m
}()

func sortChanges(cs []wire.Change) {
	sort.Slice(cs, func(i, j int) bool {
		if a, b := kindOrder[cs[i].Kind], kindOrder[cs[j].Kind]; a != b {
			return a < b
		}
		return cs[i].ID < cs[j].ID
	})
}

// serveWatch streams the watch to one client.
func (s *Server) serveWatch(w http.ResponseWriter, r *http.Request) error {
	kinds, err := wire.ParseKinds(r.URL.Query().Get("kinds"))
	if err != nil {
		return err
	}
	if c := callerOf(r.Context()); c.token.Role == desired.RoleRouter {
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
	ctx := r.Context()
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
	for {
		for _, f := range sub.frames {
			if err := write(f); err != nil {
				return nil
			}
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
		sub.frames = sub.frames[:0]
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil
		case <-keepalive.C:
			sub.frames = append(sub.frames, []byte(": keepalive\n\n"))
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
			sub.frames = append(sub.frames, frameFor(s.watch.stream, cur, kinds))
		}
	}
}
