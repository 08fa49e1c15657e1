package main

import (
	"context"
	"errors"
	"time"

	"github.com/slum-fleet/slum"
	"github.com/slum-fleet/slum/api/client"
	"github.com/slum-fleet/slum/router"
	"github.com/slum-fleet/slum/routes"
	"github.com/slum-fleet/slum/store"
	"github.com/slum-fleet/slum/traffic"
)

// routeSource is where 'slum route' gets its route table: the fleet
// database, or the fleet's API.
type routeSource struct {
	name string
	// report sends the router's traffic to the fleet's API: the one it
	// follows, or for a router following the database the one --traffic-to
	// names (nil without it: nothing to report to).
	report func(ctx context.Context, r traffic.Report) error
	source string // names this router's reports
	load   func(ctx context.Context) (*routes.Table, error)
	follow func(ctx context.Context, p *router.Proxy)
	close  func()
}

func (a *app) routeSource(ctx context.Context, every time.Duration) (*routeSource, error) {
	if a.remote() {
		c, err := a.client()
		if err != nil {
			return nil, err
		}
		return &routeSource{name: c.URL(), load: c.Routes, report: c.RecordTraffic, source: traffic.SourceName("route"),
			follow: func(ctx context.Context, p *router.Proxy) { followAPI(ctx, c, p, probeEvery) },
			close:  func() { c.Close() }}, nil
	}
	st, err := a.open(ctx, dbMustExist)
	if err != nil {
		return nil, err
	}
	db := newWatchedDB(st)
	return &routeSource{name: st.Where(),
		load: func(ctx context.Context) (*routes.Table, error) { return routes.Load(ctx, db) },
		follow: func(ctx context.Context, p *router.Proxy) {
			routes.FollowInto(ctx, db, every, p)
		},
		close: db.close}, nil
}

// probeEvery is how often a router whose API watch is broken asks the API
// for the whole table, to notice it is back even when no route changed.
const probeEvery = 2 * time.Second

// followAPI follows the API's watch into p. While the watch is broken, p
// is told the source is down, and the API is probed until it answers.
func followAPI(ctx context.Context, c *client.Client, p *router.Proxy, every time.Duration) {
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if p.Health().SourceUp {
				continue
			}
			if tab, err := c.Routes(ctx); err == nil {
				p.Update(tab)
			}
		}
	}()
	c.FollowRoutes(ctx, func(t *routes.Table) { p.Update(t) }, p.SourceFailed)
}

// watchedDB is the fleet database as a router follows it. A SQLite file
// that is deleted or replaced under the router is noticed: reading the
// deleted file would go on "succeeding" with stale rows. Until a file is
// there again, every read fails (the router keeps its table and says
// so); a replaced file is opened in its place by the store (Reopen), so
// whoever holds the store reads the new one.
type watchedDB struct {
	st     *store.Store
	follow bool // a SQLite file: Postgres has none to watch
}

func newWatchedDB(st *store.Store) *watchedDB {
	return &watchedDB{st: st, follow: st.Engine() == "sqlite"}
}

// refresh checks the file, reopening a replaced one; a deleted file, or
// one that cannot be opened, fails the read.
func (w *watchedDB) refresh(ctx context.Context) error {
	if !w.follow {
		return nil
	}
	if _, err := w.st.Refresh(ctx); errors.Is(err, store.ErrMoved) {
		return err
	}
	return nil // usable, or unusable only for writes (read-only, full)
}

func (w *watchedDB) close() { w.st.Close() }

// Revision is where every poll of the router starts: the file is checked
// here, once a poll, and the reads that follow use the store it left.
func (w *watchedDB) Revision(ctx context.Context) (int64, error) {
	if err := w.refresh(ctx); err != nil {
		return 0, err
	}
	return w.st.Revision(ctx)
}

func (w *watchedDB) StatusRevision(ctx context.Context) (int64, error) {
	return w.st.StatusRevision(ctx)
}

func (w *watchedDB) Snapshot(ctx context.Context) (*slum.Snapshot, error) { return w.st.Snapshot(ctx) }

func (w *watchedDB) ListServerStatus(ctx context.Context) ([]slum.ServerStatus, error) {
	return w.st.ListServerStatus(ctx)
}

func (w *watchedDB) ListTenantStatus(ctx context.Context) ([]slum.TenantStatus, error) {
	return w.st.ListTenantStatus(ctx)
}
