package reconcile

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/clock"
	"github.com/slum-fleet/slum/observed"
)

// servers is the loop's bookkeeping of the fleet's servers: a client and
// a watcher for each, the newest snapshot each watcher published, and the
// clients the executor's workers send with (swapped whole, read without
// the loop).
type servers struct {
	newClient ClientFactory
	clock     clock.Clock
	publish   func(*observed.Snapshot)
	byID      map[string]*serverRT
	observed  map[string]*observed.Snapshot // by server; missing: never observed
	clients   atomic.Pointer[map[string]Client]
	// ctx, once set by watch, runs every watcher in a goroutine of its
	// own; before, watchers are refreshed by hand (Sync).
	ctx context.Context
}

// serverRT is what the loop keeps per server.
type serverRT struct {
	srv     slum.Server
	key     string // fingerprint of URL and token: a change means a new client
	client  Client
	err     error // why there is no client
	watcher *observed.Watcher
	cancel  context.CancelFunc // ends the watcher's goroutine
}

func newServers(newClient ClientFactory, clk clock.Clock, publish func(*observed.Snapshot)) *servers {
	s := &servers{newClient: newClient, clock: clk, publish: publish, byID: map[string]*serverRT{}, observed: map[string]*observed.Snapshot{}}
	s.clients.Store(&map[string]Client{})
	return s
}

// adopt brings the servers in line with the desired state's: a watcher
// for each new one, a new client and watcher where the URL or token
// changed, the policy pol for every watcher. It returns the servers that
// left the fleet.
func (s *servers) adopt(list []slum.Server, pol observed.WatchPolicy) (gone []string) {
	clients := map[string]Client{}
	in := make(map[string]bool, len(list))
	for _, srv := range list {
		in[srv.ID] = true
		rt, ok := s.byID[srv.ID]
		key := fingerprint([]string{srv.URL, srv.Token})
		if ok && rt.key == key {
			rt.srv = srv
			rt.watcher.SetPolicy(pol)
			if rt.client != nil {
				clients[srv.ID] = rt.client
			}
			continue
		}
		if ok {
			s.unwatch(srv.ID)
		}
		rt = s.add(srv, key, pol)
		if rt.client != nil {
			clients[srv.ID] = rt.client
		}
	}
	for id := range s.byID {
		if !in[id] {
			s.unwatch(id)
			delete(s.byID, id)
			gone = append(gone, id)
		}
	}
	s.clients.Store(&clients)
	return gone
}

// add makes a server's client and watcher.
func (s *servers) add(srv slum.Server, key string, pol observed.WatchPolicy) *serverRT {
	rt := &serverRT{srv: srv, key: key}
	s.byID[srv.ID] = rt
	if srv.Token == "" {
		rt.err = fmt.Errorf("server %s has no token: set one with 'slum server update %s --token-file FILE'", srv.ID, srv.ID)
	} else if rt.client, rt.err = s.newClient(srv.URL, srv.Token); rt.err != nil {
		rt.err = fmt.Errorf("server %s: %w", srv.ID, rt.err)
	}
	var wc observed.WatchClient = unusable{rt.err}
	if rt.client != nil {
		wc = rt.client
	}
	rt.watcher = observed.NewWatcher(srv.ID, wc, pol, s.clock, s.publish)
	if s.ctx != nil {
		s.run(rt)
	}
	return rt
}

func (s *servers) run(rt *serverRT) {
	wctx, cancel := context.WithCancel(s.ctx)
	rt.cancel = cancel
	go rt.watcher.Run(wctx)
}

// watch runs every watcher, now and as servers are added, until ctx ends
// or stop.
func (s *servers) watch(ctx context.Context) {
	s.ctx = ctx
	for _, rt := range s.byID {
		if rt.cancel == nil {
			s.run(rt)
		}
	}
}

// stop ends every watcher's goroutine.
func (s *servers) stop() {
	for _, rt := range s.byID {
		if rt.cancel != nil {
			rt.cancel()
		}
	}
}

func (s *servers) unwatch(id string) {
	if rt := s.byID[id]; rt != nil && rt.cancel != nil {
		rt.cancel()
	}
	delete(s.observed, id)
}

// take keeps a watcher's snapshot; it returns the one before it, and
// false when the snapshot is of no use (a server that left the fleet, or
// older than one taken).
func (s *servers) take(snap *observed.Snapshot) (rt *serverRT, prev *observed.Snapshot, ok bool) {
	rt, ok = s.byID[snap.Server]
	if !ok {
		return nil, nil, false
	}
	prev = s.observed[snap.Server]
	if prev != nil && prev.Seq >= snap.Seq {
		return nil, nil, false
	}
	s.observed[snap.Server] = snap
	return rt, prev, true
}

// client is the client actions on a server are sent with; nil when there
// is none. Safe from any goroutine.
func (s *servers) client(id string) Client { return (*s.clients.Load())[id] }

// refresh probes and lists every server now, waiting for each (32 at a
// time); their snapshots go to publish.
func (s *servers) refresh(ctx context.Context) {
	ids := make([]string, 0, len(s.byID))
	for id := range s.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func(w *observed.Watcher) {
			defer wg.Done()
			w.Refresh(ctx)
			<-sem
		}(s.byID[id].watcher)
	}
	wg.Wait()
}

// unusable stands in for the client of a server slum cannot talk to.
type unusable struct{ err error }

func (u unusable) Ping(context.Context) error { return u.fail() }
func (u unusable) ListNames(context.Context, map[string]slum.InstanceHealth) (map[string]slum.InstanceHealth, bool, error) {
	return nil, false, u.fail()
}
func (u unusable) Stream(context.Context) error { return u.fail() }
func (u unusable) fail() error {
	return &observed.Error{Op: "connect", Class: observed.ErrUnauthorized, Status: http.StatusUnauthorized, Message: u.err.Error()}
}
