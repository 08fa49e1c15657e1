package experiment

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/observed"
	"github.com/slum-fleet/slum/store"
)

// HealthChange is a server's health as the controller reported it.
type HealthChange struct {
	Server string
	Health slum.Health
	Since  time.Time // the controller's own time of the change
	Seen   time.Time // when the experiment read it
}

// PlacementChange is an instance placed on another server.
type PlacementChange struct {
	Key            slum.InstanceKey
	Name, From, To string
	Seen           time.Time
}

// LeaseChange is the controller lease changing hands.
type LeaseChange struct {
	Epoch  int64
	Holder string
	Seen   time.Time
}

// Watch is what an observer saw, raw, in the order it saw it.
type Watch struct {
	Health     []HealthChange
	Placements []PlacementChange
	Events     []slum.Event
	Leases     []LeaseChange // each change of the controller lease
	Rounds     []ListRound
	DBErrors   int // database reads that failed (busy); the next poll retries
}

// listPhase says which servers the observer lists, and how often.
type listPhase int32

const (
	listAll     listPhase = iota // every server, every slow interval
	listSurvive                  // servers not hit by the fault; the targets of displaced instances often
	listNone                     // the controller's view only
)

// Lister lists a tenement server's instances.
type Lister interface {
	List(ctx context.Context) ([]observed.Instance, error)
}

// observer follows the controller's view (the fleet database) and
// tenement's own (instance lists). Two goroutines each own what they
// record and hand it back when stopped; they share only immutable values.
type observer struct {
	st      *store.Store
	clk     clock.Clock
	listers map[string]Lister
	victims map[string]bool
	// allowVictim: victims are listed during the fault too (a restart).
	allowVictim bool
	dbEvery     time.Duration
	fastEvery   time.Duration
	slowEvery   time.Duration

	phase     atomic.Int32
	placement atomic.Pointer[map[string]string] // tenement name → server, latest
	watching  atomic.Pointer[map[string]bool]   // names whose new home is listed often
	news      atomic.Pointer[Watch]             // the db loop's latest, for the runner
	seenAllW  atomic.Bool                       // every watched name listed where it may run
	cleanW    atomic.Bool                       // the last full round: every copy where it is placed, once

	cancel context.CancelFunc
	wg     sync.WaitGroup
	db     Watch
	lists  []ListRound
}

func newObserver(st *store.Store, clk clock.Clock, listers map[string]Lister, victims []string, allowVictim bool) *observer {
	o := &observer{st: st, clk: clk, listers: listers, victims: map[string]bool{}, allowVictim: allowVictim,
		dbEvery: 20 * time.Millisecond, fastEvery: 100 * time.Millisecond, slowEvery: 500 * time.Millisecond}
	for _, v := range victims {
		o.victims[v] = true
	}
	o.placement.Store(&map[string]string{})
	o.watching.Store(&map[string]bool{})
	o.news.Store(&Watch{})
	return o
}

// watch marks the displaced instances whose new home is to be listed
// often, until it lists them; what earlier lists showed no longer counts.
func (o *observer) watch(names []string) {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	o.seenAllW.Store(false)
	o.watching.Store(&m)
}

func (o *observer) setPhase(p listPhase) { o.phase.Store(int32(p)) }

// seenAll reports whether every watched instance has been listed where it
// may run.
func (o *observer) seenAll() bool { return o.seenAllW.Load() }

// clean reports whether the last round of every server found each copy
// where the desired state places it, and on one server only.
func (o *observer) clean() bool { return o.cleanW.Load() }

func (o *observer) start(ctx context.Context) {
	ctx, o.cancel = context.WithCancel(ctx)
	o.wg.Add(1)
	go func() { defer o.wg.Done(); o.dbLoop(ctx) }()
	if len(o.listers) > 0 {
		o.wg.Add(1)
		go func() { defer o.wg.Done(); o.listLoop(ctx) }()
	}
}

// stop ends the observation and returns what was seen.
func (o *observer) stop() Watch {
	o.cancel()
	o.wg.Wait()
	w := o.db
	w.Rounds = o.lists
	return w
}

// latest is the database's news so far (not the lists).
func (o *observer) latest() *Watch { return o.news.Load() }

func (o *observer) dbLoop(ctx context.Context) {
	var lastEvent int64
	if evs, err := o.st.RecentEvents(ctx, 1); err == nil && len(evs) == 1 {
		lastEvent = evs[0].ID
	}
	health := map[string]slum.ServerStatus{}
	placed := map[slum.InstanceKey]slum.Instance{}
	var lease slum.Lease
	first := true
	for {
		now := o.clk.Now()
		changed := false
		if sts, err := o.st.ListServerStatus(ctx); err == nil {
			for _, s := range sts {
				if p, ok := health[s.ServerID]; !ok || p.Health != s.Health || !p.HealthSince.Equal(s.HealthSince) {
					health[s.ServerID] = s
					o.db.Health = append(o.db.Health, HealthChange{Server: s.ServerID, Health: s.Health, Since: s.HealthSince, Seen: now})
					changed = true
				}
			}
		} else if ctx.Err() == nil {
			o.db.DBErrors++
		}
		if ins, err := o.st.ListInstances(ctx); err == nil {
			names := make(map[string]string, len(ins))
			for _, in := range ins {
				names[in.TenementName()] = in.ServerID
				if p, ok := placed[in.Key()]; ok && p.ServerID != in.ServerID {
					o.db.Placements = append(o.db.Placements, PlacementChange{Key: in.Key(), Name: in.TenementName(), From: p.ServerID, To: in.ServerID, Seen: now})
					changed = true
				}
				placed[in.Key()] = in
			}
			o.placement.Store(&names)
		} else if ctx.Err() == nil {
			o.db.DBErrors++
		}
		for {
			evs, err := o.st.Events(ctx, lastEvent, 500)
			if err != nil || len(evs) == 0 {
				break
			}
			if !first {
				o.db.Events = append(o.db.Events, evs...)
				changed = true
			}
			lastEvent = evs[len(evs)-1].ID
		}
		first = false
		if l, err := o.st.GetLease(ctx, "controller"); err == nil && (l.Epoch != lease.Epoch || l.Holder != lease.Holder) {
			lease = l
			o.db.Leases = append(o.db.Leases, LeaseChange{Epoch: l.Epoch, Holder: l.Holder, Seen: now})
			changed = true
		}
		if changed {
			cp := o.db
			cp.Health = append([]HealthChange(nil), o.db.Health...)
			cp.Placements = append([]PlacementChange(nil), o.db.Placements...)
			cp.Events = append([]slum.Event(nil), o.db.Events...)
			cp.Leases = append([]LeaseChange(nil), o.db.Leases...)
			o.news.Store(&cp)
		}
		select {
		case <-ctx.Done():
			return
		case <-o.clk.After(o.dbEvery):
		}
	}
}

// listLoop lists servers: the new homes of displaced instances often (so
// their start is timed closely), every server that may answer now and then
// (to catch copies on two servers). Each list call costs the server an
// Argon2 verification, so the loop asks only where it must.
func (o *observer) listLoop(ctx context.Context) {
	lastAll := time.Time{}
	seen := map[string]bool{}
	var watched *map[string]bool
	for {
		now := o.clk.Now()
		if w := o.watching.Load(); w != watched {
			// A new watch starts afresh: what was seen before it does
			// not count.
			watched, seen = w, map[string]bool{}
		}
		phase := listPhase(o.phase.Load())
		ask := map[string]bool{}
		if phase != listNone {
			if now.Sub(lastAll) >= o.slowEvery {
				for id := range o.listers {
					if phase == listAll || !o.victims[id] || o.allowVictim {
						ask[id] = true
					}
				}
				lastAll = now
			}
			placement := *o.placement.Load()
			for n := range *o.watching.Load() {
				if seen[n] {
					continue
				}
				if s := placement[n]; s != "" && (!o.victims[s] || o.allowVictim || phase == listAll) {
					ask[s] = true
				}
			}
		}
		if len(ask) > 0 {
			r := o.round(ctx, ask)
			if ctx.Err() != nil {
				return
			}
			for s, names := range r.Lists {
				if o.victims[s] && !o.allowVictim {
					continue
				}
				for _, n := range names {
					seen[n] = true
				}
			}
			o.lists = append(o.lists, r)
			watching := *o.watching.Load()
			all := len(watching) > 0
			for n := range watching {
				all = all && seen[n]
			}
			o.seenAllW.Store(all)
			if len(r.Lists) == len(o.listers) {
				o.cleanW.Store(placedOnce(r, *o.placement.Load()))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-o.clk.After(o.fastEvery):
		}
	}
}

// round lists the asked servers at once.
func (o *observer) round(ctx context.Context, ask map[string]bool) ListRound {
	type answer struct {
		id    string
		names []string
		ok    bool
	}
	ch := make(chan answer, len(ask))
	for id := range ask {
		go func(id string) {
			lctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			list, err := o.listers[id].List(lctx)
			if err != nil {
				ch <- answer{id: id}
				return
			}
			names := make([]string, len(list))
			for i, in := range list {
				names[i] = in.Name
			}
			sort.Strings(names)
			ch <- answer{id, names, true}
		}(id)
	}
	r := ListRound{Lists: map[string][]string{}}
	for range ask {
		if a := <-ch; a.ok {
			r.Lists[a.id] = a.names
		}
	}
	// Timed when the last answer came: a list shows what ran by then, so
	// the figures err on the slow side, never the flattering one.
	r.At = o.clk.Now()
	return r
}

// placedOnce reports whether a round of every server found each listed
// copy on the server the desired state places it on.
func placedOnce(r ListRound, placement map[string]string) bool {
	for server, names := range r.Lists {
		for _, n := range names {
			if placement[n] != server {
				return false
			}
		}
	}
	return true
}
