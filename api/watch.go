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
	"strings"
	"sync"
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

// view is the fleet as objects, each as JSON by kind and id, with what
// each was made from (so the next build marshals only what changed). A
// view is never changed once built: the next poll builds a new one.
type view struct {
	settings  map[string]memoEntry[string]
	holds     map[string]memoEntry[string]
	servers   map[string]memoEntry[serverIn]
	tenants   map[string]memoEntry[tenantIn]
	instances map[string]memoEntry[instanceIn]
	routes    map[string]routeEntry
}

// each calls fn for every object of the kinds asked for (nil: all), in
// the order resets list them.
func (v *view) each(kinds map[wire.ObjectKind]bool, fn func(kind wire.ObjectKind, id string, obj []byte)) {
	if v == nil {
		return
	}
	walk := func(kind wire.ObjectKind, ids []string, get func(string) []byte) {
		if kinds != nil && !kinds[kind] {
			return
		}
		sort.Strings(ids)
		for _, id := range ids {
			fn(kind, id, get(id))
		}
	}
	walk(wire.ObjSettings, keys(v.settings), func(id string) []byte { return v.settings[id].json })
	walk(wire.ObjServer, keys(v.servers), func(id string) []byte { return v.servers[id].json })
	walk(wire.ObjTenant, keys(v.tenants), func(id string) []byte { return v.tenants[id].json })
	walk(wire.ObjInstance, keys(v.instances), func(id string) []byte { return v.instances[id].json })
	walk(wire.ObjHold, keys(v.holds), func(id string) []byte { return v.holds[id].json })
	walk(wire.ObjRoute, keys(v.routes), func(id string) []byte { return v.routes[id].json })
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

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
	events         []desired.Event
	once           sync.Once
	full           []byte // the reset for every kind, made by the first stream that needs it
}

// frame is the reset message for a client of kinds (nil: every kind).
func (r *resetSource) frame(kinds map[wire.ObjectKind]bool) []byte {
	if kinds == nil {
		r.once.Do(func() { r.full = r.render(nil) })
		return r.full
	}
	return r.render(kinds)
}

func (r *resetSource) render(kinds map[wire.ObjectKind]bool) []byte {
	msg := wire.Reset{Stream: r.stream, Seq: r.seq, Revision: r.rev, StatusRevision: r.srev, Objects: []wire.Change{}, Events: []desired.Event{}}
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
	view           *view
	rev, srev      int64
	holds          []byte // the open holds as last read, to notice changes no revision counts
	lastEvent      int64
	events         []desired.Event // the latest recentEvents
	tail           *node
	ring           []*node      // the latest nodes, oldest first
	reset          *resetSource // the reset at tail, once asked for
	snap           *desired.Snapshot
	stats          []desired.ServerStats
	statusRev      int64
	status         *statusIndex
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
					sub.replay = append(sub.replay, n)
				}
			}
			return sub
		}
	}
	if st.reset == nil {
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
	v, changes, err := w.build(ctx, st, rev, srev, holds)
	if err != nil {
		return err
	}
	st.holds = holdsJSON
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
func (w *watcher) build(ctx context.Context, st *watchState, rev, srev int64, holds []desired.Hold) (*view, []wire.Change, error) {
	if st.snap == nil || rev != st.snapRevChecked {
		snap, err := w.st.Snapshot(ctx)
		if err != nil {
			return nil, nil, err
		}
		stats, err := w.st.AllServerStats(ctx)
		if err != nil {
			return nil, nil, err
		}
		st.snap, st.stats, st.snapRevChecked = snap, stats, rev
	}
	if srev != st.statusRev {
		sstat, err := w.st.ListServerStatus(ctx)
		if err != nil {
			return nil, nil, err
		}
		tstat, err := w.st.ListTenantStatus(ctx)
		if err != nil {
			return nil, nil, err
		}
		istat, err := w.st.ListInstanceStatus(ctx)
		if err != nil {
			return nil, nil, err
		}
		st.status, st.statusRev = indexStatus(sstat, tstat, istat), srev
	}
	v, changes := makeView(st.view, st.snap, st.stats, st.status, holds)
	return v, changes, nil
}

type memoEntry[T comparable] struct {
	in   T
	json []byte
}

type routeEntry struct {
	r    routes.Route
	json []byte
}

type serverIn struct {
	s      desired.Server
	stats  desired.ServerStats
	status desired.ServerStatus
	has    bool
}

type tenantIn struct {
	t                desired.Tenant
	serving, spares  string
	reason           string
	changed, updated time.Time
	has              bool
}

type instanceIn struct {
	in     desired.Instance
	status desired.InstanceStatus
	has    bool
}

// builder makes one view from the previous one, collecting what changed.
type builder struct {
	changes []wire.Change
}

// remember puts the object made from in into cur: the previous JSON when
// in is the same, else obj() marshalled now, which is a change.
func remember[T comparable](b *builder, kind wire.ObjectKind, old, cur map[string]memoEntry[T], id string, in T, obj func() any) {
	if e, ok := old[id]; ok && e.in == in {
		cur[id] = e
		return
	}
	data, err := json.Marshal(obj())
	if err != nil {
		return
	}
	cur[id] = memoEntry[T]{in, data}
	b.changes = append(b.changes, wire.Change{Kind: kind, ID: id, Op: wire.OpPut, Object: data})
}

// gone lists what old has and cur does not as deletions.
func gone[V any](b *builder, kind wire.ObjectKind, old, cur map[string]V) {
	for id := range old {
		if _, ok := cur[id]; !ok {
			b.changes = append(b.changes, wire.Change{Kind: kind, ID: id, Op: wire.OpDelete})
		}
	}
}

func copies(cs []desired.CopyRef) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.Instance)
		b.WriteByte('@')
		b.WriteString(c.Server)
		b.WriteByte(',')
	}
	return b.String()
}

func sameRoute(a, b routes.Route) bool {
	return a.Tenant == b.Tenant && a.Domain == b.Domain && a.Reason == b.Reason &&
		slices.Equal(a.Backends, b.Backends) && slices.Equal(a.Spares, b.Spares)
}

// statusIndex is the controller's status as read, by object: made once
// per status revision, and used by every build until the next.
type statusIndex struct {
	servers   map[string]*desired.ServerStatus
	health    map[string]observed.Health
	tenants   map[string]*desired.TenantStatus
	serving   map[string]desired.TenantStatus
	instances map[string]*desired.InstanceStatus
}

func indexStatus(sstat []desired.ServerStatus, tstat []desired.TenantStatus, istat []desired.InstanceStatus) *statusIndex {
	x := &statusIndex{servers: make(map[string]*desired.ServerStatus, len(sstat)), health: make(map[string]observed.Health, len(sstat)),
		tenants: make(map[string]*desired.TenantStatus, len(tstat)), serving: make(map[string]desired.TenantStatus, len(tstat)),
		instances: make(map[string]*desired.InstanceStatus, len(istat))}
	for i := range sstat {
		x.servers[sstat[i].ServerID] = &sstat[i]
		x.health[sstat[i].ServerID] = sstat[i].Health
	}
	for i := range tstat {
		x.tenants[tstat[i].TenantID] = &tstat[i]
		x.serving[tstat[i].TenantID] = tstat[i]
	}
	for i := range istat {
		x.instances[istat[i].Key()] = &istat[i]
	}
	return x
}

// makeView turns what was read into objects, reusing prev's JSON for
// objects made from the same values, and says what changed since prev.
func makeView(prev *view, snap *desired.Snapshot, stats []desired.ServerStats, status *statusIndex, holds []desired.Hold) (*view, []wire.Change) {
	sstatBy, health, tstatBy, serving, istatBy := status.servers, status.health, status.tenants, status.serving, status.instances
	if prev == nil {
		prev = &view{}
	}
	var b builder
	v := &view{settings: map[string]memoEntry[string]{}, holds: make(map[string]memoEntry[string], len(holds))}
	setJSON, _ := json.Marshal(snap.Settings)
	remember(&b, wire.ObjSettings, prev.settings, v.settings, "fleet", string(setJSON), func() any { return snap.Settings })
	for _, h := range holds {
		hj, _ := json.Marshal(h)
		remember(&b, wire.ObjHold, prev.holds, v.holds, fmt.Sprint(h.ID), string(hj), func() any { return h })
	}
	gone(&b, wire.ObjHold, prev.holds, v.holds)

	statsBy := make(map[string]desired.ServerStats, len(stats))
	for _, s := range stats {
		statsBy[s.ServerID] = s
	}
	v.servers = make(map[string]memoEntry[serverIn], len(snap.Servers))
	for _, s := range snap.Servers {
		in := serverIn{s: s, stats: statsBy[s.ID]}
		if p := sstatBy[s.ID]; p != nil {
			in.status, in.has = *p, true
		}
		remember(&b, wire.ObjServer, prev.servers, v.servers, s.ID, in, func() any {
			return wire.ServerView{Server: wire.NewServer(s), Stats: in.stats, Status: sstatBy[s.ID]}
		})
	}
	gone(&b, wire.ObjServer, prev.servers, v.servers)

	v.tenants = make(map[string]memoEntry[tenantIn], len(snap.Tenants))
	for _, t := range snap.Tenants {
		in := tenantIn{t: t}
		if p := tstatBy[t.ID]; p != nil {
			in.serving, in.spares, in.reason, in.changed, in.updated, in.has = copies(p.Serving), copies(p.Spares), p.Reason, p.ChangedAt, p.UpdatedAt, true
		}
		remember(&b, wire.ObjTenant, prev.tenants, v.tenants, t.ID, in, func() any {
			return wire.TenantView{Tenant: t, Status: tstatBy[t.ID]}
		})
	}
	gone(&b, wire.ObjTenant, prev.tenants, v.tenants)

	v.instances = make(map[string]memoEntry[instanceIn], len(snap.Instances))
	for _, in := range snap.Instances {
		key := in.Key()
		mi := instanceIn{in: in}
		if p := istatBy[key]; p != nil {
			mi.status, mi.has = *p, true
		}
		remember(&b, wire.ObjInstance, prev.instances, v.instances, key, mi, func() any {
			return wire.InstanceView{Instance: in, Key: key, Status: istatBy[key]}
		})
	}
	gone(&b, wire.ObjInstance, prev.instances, v.instances)

	table := routes.Build(routes.Source{Revision: snap.Revision, Servers: snap.Servers, Health: health, Tenants: snap.Tenants,
		Instances: snap.Instances, Serving: serving})
	v.routes = make(map[string]routeEntry, table.Len())
	for _, r := range table.Routes() {
		e, ok := prev.routes[r.Domain]
		if !ok || !sameRoute(e.r, r) {
			data, err := json.Marshal(r)
			if err != nil {
				continue
			}
			e = routeEntry{r, data}
			b.changes = append(b.changes, wire.Change{Kind: wire.ObjRoute, ID: r.Domain, Op: wire.OpPut, Object: data})
		}
		v.routes[r.Domain] = e
	}
	gone(&b, wire.ObjRoute, prev.routes, v.routes)
	sortChanges(b.changes)
	return v, b.changes
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
