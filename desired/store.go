// Package desired is slum's source of truth: the servers, tenants and
// instance placements the fleet should have, kept in SQLite. Store is its Go
// API; every change is validated first and made in one transaction, and the
// fleet-file apply and diff live here too. The controller reads desired state
// and writes observed status through the same Store.
package desired

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/slum-fleet/slum"

	"github.com/slum-fleet/slum/db"
)

// Store is the desired state of one fleet.
type Store struct {
	db  *db.DB
	now func() time.Time
}

// Open opens the fleet database at path, creating and migrating it as
// needed. A file that is not a slum database is refused untouched, with
// an error wrapping ErrInvalid.
func Open(ctx context.Context, path string) (*Store, error) {
	return newStore(db.Open(ctx, path))
}

// OpenExisting opens a fleet database that must exist already: where there
// is none it creates nothing and fails with an error wrapping ErrNotFound.
func OpenExisting(ctx context.Context, path string) (*Store, error) {
	return newStore(db.OpenExisting(ctx, path))
}

func newStore(d *db.DB, err error) (*Store, error) {
	switch {
	case errors.Is(err, db.ErrNotExist):
		return nil, classed{err, slum.ErrNotFound}
	case errors.Is(err, db.ErrForeign):
		return nil, classed{err, slum.ErrInvalid}
	case err != nil:
		return nil, err
	}
	return &Store{db: d, now: time.Now}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Path is the database file.
func (s *Store) Path() string { return s.db.Path() }

// Created reports whether opening the Store created its database file.
func (s *Store) Created() bool { return s.db.Created() }

// write runs fn in one transaction that also bumps the desired revision, so
// a running controller sees the change at once.
func (s *Store) write(ctx context.Context, fn func(q *db.Queries, now int64) error) error {
	now := ms(s.now())
	return s.db.InTx(ctx, func(q *db.Queries) error {
		if err := fn(q, now); err != nil {
			return err
		}
		return q.BumpRevision(ctx)
	})
}

// Revision counts committed changes to desired state.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	return s.db.Queries().GetRevision(ctx)
}

func event(ctx context.Context, q *db.Queries, now int64, object slum.ObjectRef, reason slum.EventReason, msg string) error {
	return q.InsertEvent(ctx, db.InsertEventParams{At: now, Object: string(object), Reason: string(reason), Message: msg})
}

// ---- servers

// DefaultDomain is the domain a server's subdomain routing uses when none is
// given: the host of its URL.
func DefaultDomain(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func validateServer(s slum.Server) error {
	if err := ValidateID("server id", s.ID); err != nil {
		return err
	}
	if err := ValidateURL("url", s.URL); err != nil {
		return err
	}
	if err := ValidateRegion("region", s.Region); err != nil {
		return err
	}
	if err := ValidatePositive("capacity_mb", s.CapacityMB); err != nil {
		return err
	}
	if err := validateServerDomain(s.Domain); err != nil {
		return err
	}
	if err := ValidateToken(s.Token); err != nil {
		return err
	}
	switch s.State {
	case slum.ServerActive, slum.ServerCordoned, slum.ServerDraining:
	default:
		return invalid("state", string(s.State), "must be active, cordoned or draining")
	}
	return nil
}

// validateServerDomain accepts a host name or, since a URL's host may be
// one, an IP address.
func validateServerDomain(d string) error {
	if net.ParseIP(d) != nil {
		return nil
	}
	return ValidateDomain("domain", d)
}

// ValidateToken rejects tokens that could not travel in an HTTP header.
// The token itself is never part of the message.
func ValidateToken(tok string) error {
	if len(tok) > 4096 {
		return invalid("token", "(hidden)", "must be at most 4096 characters")
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] > '~' {
			return invalid("token", "(hidden)", "must be printable ASCII without spaces")
		}
	}
	return nil
}

func normalizeServer(s *slum.Server) {
	if s.Domain == "" {
		s.Domain = DefaultDomain(s.URL)
	}
	if s.State == "" {
		s.State = slum.ServerActive
	}
	s.URL = strings.TrimSuffix(s.URL, "/")
}

// AddServer adds a server to the fleet.
func (s *Store) AddServer(ctx context.Context, srv slum.Server) (slum.Server, error) {
	normalizeServer(&srv)
	if err := validateServer(srv); err != nil {
		return slum.Server{}, fmt.Errorf("add server: %w", err)
	}
	err := s.write(ctx, func(q *db.Queries, now int64) error {
		if _, err := q.GetServer(ctx, srv.ID); err == nil {
			return fmt.Errorf("add server: server %s %w", srv.ID, slum.ErrAlreadyExists)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("add server %s: %w", srv.ID, err)
		}
		srv.CreatedAt, srv.UpdatedAt = fromMS(now), fromMS(now)
		if err := q.InsertServer(ctx, serverParams(srv, now)); err != nil {
			return fmt.Errorf("add server %s: %w", srv.ID, err)
		}
		return event(ctx, q, now, slum.ServerRef(srv.ID), slum.ReasonAdded, "server added at "+srv.URL)
	})
	return srv, err
}

func serverParams(s slum.Server, now int64) db.InsertServerParams {
	return db.InsertServerParams{
		ID: s.ID, Url: s.URL, Region: s.Region, CapacityMb: s.CapacityMB, Domain: s.Domain,
		Token: s.Token, State: string(s.State), CreatedAt: now, UpdatedAt: now,
	}
}

func updateServerParams(s slum.Server, now int64) db.UpdateServerParams {
	return db.UpdateServerParams{
		ID: s.ID, Url: s.URL, Region: s.Region, CapacityMb: s.CapacityMB, Domain: s.Domain,
		Token: s.Token, State: string(s.State), UpdatedAt: now,
	}
}

func toServer(r db.Server) slum.Server {
	return slum.Server{
		ID: r.ID, URL: r.Url, Region: r.Region, CapacityMB: r.CapacityMb, Domain: r.Domain,
		Token: r.Token, State: slum.ServerState(r.State), CreatedAt: fromMS(r.CreatedAt), UpdatedAt: fromMS(r.UpdatedAt),
	}
}

func getServer(ctx context.Context, q *db.Queries, id string) (slum.Server, error) {
	r, err := q.GetServer(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return slum.Server{}, fmt.Errorf("server %s %w", id, slum.ErrNotFound)
	}
	if err != nil {
		return slum.Server{}, fmt.Errorf("get server %s: %w", id, err)
	}
	return toServer(r), nil
}

// GetServer returns one server.
func (s *Store) GetServer(ctx context.Context, id string) (slum.Server, error) {
	if err := ValidateID("server id", id); err != nil {
		return slum.Server{}, err
	}
	return getServer(ctx, s.db.Queries(), id)
}

// ListServers returns every server, by id.
func (s *Store) ListServers(ctx context.Context) ([]slum.Server, error) {
	rows, err := s.db.Queries().ListServers(ctx)
	return convert(rows, err, "list servers", toServer)
}

// ServersInRegion returns the servers of one region.
func (s *Store) ServersInRegion(ctx context.Context, region string) ([]slum.Server, error) {
	if err := ValidateRegion("region", region); err != nil {
		return nil, err
	}
	rows, err := s.db.Queries().ListServersInRegion(ctx, region)
	return convert(rows, err, "list servers in region "+region, toServer)
}

// UpdateServer changes a server's settings. Capacity cannot drop below what
// its instances use.
func (s *Store) UpdateServer(ctx context.Context, id string, u slum.ServerUpdate) (slum.Server, error) {
	var out slum.Server
	err := s.write(ctx, func(q *db.Queries, now int64) error {
		srv, err := getServer(ctx, q, id)
		if err != nil {
			return fmt.Errorf("update server: %w", err)
		}
		oldHost := DefaultDomain(srv.URL)
		if u.URL != nil {
			srv.URL = strings.TrimSuffix(*u.URL, "/")
			if u.Domain == nil && srv.Domain == oldHost {
				srv.Domain = DefaultDomain(srv.URL)
			}
		}
		if u.Region != nil {
			srv.Region = *u.Region
		}
		if u.CapacityMB != nil {
			srv.CapacityMB = *u.CapacityMB
		}
		if u.Domain != nil {
			srv.Domain = *u.Domain
		}
		if u.Token != nil {
			srv.Token = *u.Token
		}
		if err := validateServer(srv); err != nil {
			return fmt.Errorf("update server %s: %w", id, err)
		}
		use, err := q.ServerUsageOne(ctx, id)
		if err != nil {
			return fmt.Errorf("update server %s: %w", id, err)
		}
		if use.UsedMb > srv.CapacityMB {
			return fmt.Errorf("update server %s: %w: its instances use %d MB, more than capacity_mb %d",
				id, slum.ErrNoCapacity, use.UsedMb, srv.CapacityMB)
		}
		if _, err := q.UpdateServer(ctx, updateServerParams(srv, now)); err != nil {
			return fmt.Errorf("update server %s: %w", id, err)
		}
		srv.UpdatedAt = fromMS(now)
		out = srv
		return event(ctx, q, now, slum.ServerRef(id), slum.ReasonUpdated, "server settings changed")
	})
	return out, err
}

// ServerStats returns one server's capacity use.
func (s *Store) ServerStats(ctx context.Context, id string) (slum.ServerStats, error) {
	srv, err := s.GetServer(ctx, id)
	if err != nil {
		return slum.ServerStats{}, err
	}
	use, err := s.db.Queries().ServerUsageOne(ctx, id)
	if err != nil {
		return slum.ServerStats{}, fmt.Errorf("server stats %s: %w", id, err)
	}
	return slum.ServerStats{ServerID: id, CapacityMB: srv.CapacityMB, UsedMB: use.UsedMb,
		FreeMB: srv.CapacityMB - use.UsedMb, Tenants: use.Tenants, Instances: use.Instances}, nil
}

// AllServerStats returns every server's capacity use, by id.
func (s *Store) AllServerStats(ctx context.Context) ([]slum.ServerStats, error) {
	rows, err := s.db.Queries().ServerUsage(ctx)
	return convert(rows, err, "server stats", func(r db.ServerUsageRow) slum.ServerStats {
		return slum.ServerStats{ServerID: r.ID, CapacityMB: r.CapacityMb, UsedMB: r.UsedMb,
			FreeMB: r.CapacityMb - r.UsedMb, Tenants: r.Tenants, Instances: r.Instances}
	})
}

// RemoveServer deletes a server that has no instances. Unless force is set
// it also refuses while the controller has yet to stop copies it placed
// there, which would otherwise be left running unwatched.
func (s *Store) RemoveServer(ctx context.Context, id string, force bool) error {
	if err := ValidateID("server id", id); err != nil {
		return fmt.Errorf("remove server: %w", err)
	}
	return s.write(ctx, func(q *db.Queries, now int64) error {
		if _, err := getServer(ctx, q, id); err != nil {
			return fmt.Errorf("remove server: %w", err)
		}
		use, err := q.ServerUsageOne(ctx, id)
		if err != nil {
			return fmt.Errorf("remove server %s: %w", id, err)
		}
		if use.Instances > 0 {
			return fmt.Errorf("remove server %s: %w: %d tenants with %d instances are placed there; move or remove them first (or drain the server)",
				id, slum.ErrHasActiveTenants, use.Tenants, use.Instances)
		}
		if !force {
			n, err := q.CountPlacementsOnServer(ctx, id)
			if err != nil {
				return fmt.Errorf("remove server %s: %w", id, err)
			}
			if n > 0 {
				return fmt.Errorf("remove server %s: %w: the controller has yet to stop %d instances it placed there; wait for it, or force",
					id, slum.ErrConflict, n)
			}
		}
		if err := q.ClearHomeServer(ctx, id); err != nil {
			return fmt.Errorf("remove server %s: %w", id, err)
		}
		if _, err := q.DeleteServer(ctx, id); err != nil {
			return fmt.Errorf("remove server %s: %w", id, err)
		}
		return event(ctx, q, now, slum.ServerRef(id), slum.ReasonRemoved, "server removed")
	})
}

// SetServerState cordons (ServerCordoned) or uncordons (ServerActive) a
// server. Use Drain to drain one.
func (s *Store) SetServerState(ctx context.Context, id string, state slum.ServerState) (slum.Server, error) {
	if state != slum.ServerActive && state != slum.ServerCordoned {
		return slum.Server{}, invalid("state", string(state), "must be active or cordoned; drain with Drain")
	}
	var out slum.Server
	err := s.write(ctx, func(q *db.Queries, now int64) error {
		srv, err := getServer(ctx, q, id)
		if err != nil {
			return err
		}
		if srv.State == state {
			out = srv
			return nil
		}
		srv.State = state
		if _, err := q.UpdateServer(ctx, updateServerParams(srv, now)); err != nil {
			return fmt.Errorf("set server %s %s: %w", id, state, err)
		}
		srv.UpdatedAt = fromMS(now)
		out = srv
		reason := map[slum.ServerState]slum.EventReason{slum.ServerActive: slum.ReasonUncordoned, slum.ServerCordoned: slum.ReasonCordoned}[state]
		return event(ctx, q, now, slum.ServerRef(id), reason, "server is now "+string(state))
	})
	return out, err
}

// Drain marks a server draining and places each of its instances on another
// server, all in one transaction: when some instance fits nowhere nothing
// changes. The controller then starts the new copies and stops the old ones.
func (s *Store) Drain(ctx context.Context, id string) ([]slum.Move, error) {
	var moves []slum.Move
	err := s.write(ctx, func(q *db.Queries, now int64) error {
		moves = nil
		srv, err := getServer(ctx, q, id)
		if err != nil {
			return fmt.Errorf("drain: %w", err)
		}
		p, err := loadPlacer(ctx, q)
		if err != nil {
			return fmt.Errorf("drain %s: %w", id, err)
		}
		rows, err := q.ListInstancesOnServer(ctx, id)
		if err != nil {
			return fmt.Errorf("drain %s: %w", id, err)
		}
		tenantRegion := map[string]string{}
		for _, r := range rows {
			in := toInstance(r)
			region, ok := tenantRegion[in.TenantID]
			if !ok {
				t, err := q.GetTenant(ctx, in.TenantID)
				if err != nil {
					return fmt.Errorf("drain %s: %w", id, err)
				}
				region = t.Region
				tenantRegion[in.TenantID] = region
			}
			to, err := p.place(in.TenantID, region, in.Process, in.MemoryMB, id)
			if err != nil {
				return fmt.Errorf("drain %s: instance %s: %w", id, in.Key(), err)
			}
			p.release(in)
			in.ServerID, in.HomeServerID = to, to
			p.take(in)
			if _, err := q.UpdateInstance(ctx, updateInstanceParams(in, now)); err != nil {
				return fmt.Errorf("drain %s: move %s: %w", id, in.Key(), err)
			}
			moves = append(moves, slum.Move{Instance: in.Key(), From: id, To: to})
			if err := event(ctx, q, now, slum.InstanceRef(in.Key()), slum.ReasonMoved, "drain of "+id+": placed on "+to); err != nil {
				return err
			}
		}
		srv.State = slum.ServerDraining
		if _, err := q.UpdateServer(ctx, updateServerParams(srv, now)); err != nil {
			return fmt.Errorf("drain %s: %w", id, err)
		}
		return event(ctx, q, now, slum.ServerRef(id), slum.ReasonDraining, fmt.Sprintf("server draining: %d instances placed elsewhere", len(moves)))
	})
	return moves, err
}

// loadPlacer reads every server and instance into a Placer. Servers the
// controller last saw dead, suspect or rejecting its token take nothing new.
func loadPlacer(ctx context.Context, q *db.Queries) (*Placer, error) {
	p := newPlacer()
	servers, err := q.ListServers(ctx)
	if err != nil {
		return nil, err
	}
	statuses, err := q.ListServerStatus(ctx)
	if err != nil {
		return nil, err
	}
	health := make(map[string]slum.Health, len(statuses))
	for _, st := range statuses {
		health[st.ServerID] = slum.Health(st.Health)
	}
	for _, r := range servers {
		unfit := ""
		switch h := health[r.ID]; h {
		case slum.HealthDead, slum.HealthSuspect, slum.HealthUnauthorized:
			unfit = "the controller last saw it " + string(h)
		}
		p.AddServer(toServer(r), unfit)
	}
	insts, err := q.ListInstances(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range insts {
		p.take(toInstance(r))
	}
	return p, nil
}

var _ slum.Fleet = (*Store)(nil)
